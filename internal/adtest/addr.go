package adtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	firstSlot = 2
	lastSlot  = 250
)

// addrSlot is a reserved loopback address 127.0.1.N: the exclusive flock on <base>/addr-N.lock
// is held for the DC's lifetime. The lock file records the owner, so that the next process to
// take the address can clean up after an owner that died.
type addrSlot struct {
	n    int
	ip   string
	dir  string // <base>/dc-N
	lock *os.File

	mu sync.Mutex
}

type slotRecord struct {
	OwnerPID int    `json:"owner_pid"`
	SambaPID int    `json:"samba_pid,omitempty"` // also its process group id
	Dir      string `json:"dir"`
	IP       string `json:"ip"`
	Since    string `json:"since"`
}

func slotIP(n int) string { return fmt.Sprintf("127.0.1.%d", n) }

func lockPath(n int) string { return filepath.Join(baseDir(), fmt.Sprintf("addr-%d.lock", n)) }

func slotDir(n int) string { return filepath.Join(baseDir(), fmt.Sprintf("dc-%d", n)) }

// tryLock takes an exclusive non-blocking flock on path; it returns (nil, nil) when another
// open file description holds it.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return f, nil
}

// lockWait takes an exclusive flock on path, polling until ctx is done.
func lockWait(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := tryLock(path)
		if err != nil || f != nil {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func unlock(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

var sweepOnce sync.Once

// sweepStale cleans, once per process, after DCs whose owners died: for every address lock that
// nobody holds, it kills the stale samba recorded there and removes its directory.
func sweepStale() {
	sweepOnce.Do(func() {
		for n := firstSlot; n <= lastSlot; n++ {
			p := lockPath(n)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			f, err := tryLock(p)
			if err != nil || f == nil {
				continue
			}
			cleanStale(n, f)
			unlock(f)
		}
	})
}

// cleanStale kills a samba left by a dead owner of slot n (whose lock f we hold) and removes its
// directory. It only kills a process group whose members run the samba binary.
func cleanStale(n int, f *os.File) {
	var rec slotRecord
	if data, err := readAllAt(f); err == nil && len(bytes.TrimSpace(data)) > 0 {
		json.Unmarshal(data, &rec)
	}
	dir := slotDir(n)
	pids := map[int]bool{}
	if rec.SambaPID > 0 {
		pids[rec.SambaPID] = true
	}
	if data, err := os.ReadFile(filepath.Join(dir, "pid", "samba.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
			pids[pid] = true
		}
	}
	for pid := range pids {
		killStaleGroup(pid, dir)
	}
	os.RemoveAll(dir)
	if rec.IP != "" {
		delLoopback(rec.IP) // the next taker adds it again
	}
	f.Truncate(0)
}

func readAllAt(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	_, err = f.ReadAt(buf, 0)
	return buf, err
}

// killStaleGroup kills process group pgid if one of its members is a samba process: either the
// master whose command line names dir's smb.conf, or any process whose executable is samba.
func killStaleGroup(pgid int, dir string) {
	sambaExe, _ := exec.LookPath("samba")
	if p, err := filepath.EvalSymlinks(sambaExe); err == nil {
		sambaExe = p
	}
	isOurs := func(pid int) bool {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
			bytes.Contains(cmdline, []byte(filepath.Join(dir, "etc", "smb.conf"))) {
			return true
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return err == nil && sambaExe != "" && exe == sambaExe
	}
	members := groupMembers(pgid)
	ours := false
	for _, pid := range members {
		if isOurs(pid) {
			ours = true
			break
		}
	}
	if !ours {
		return
	}
	for _, pid := range members {
		if pid == pgid { // the master is alive: let it stop its workers
			syscall.Kill(pgid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(groupMembers(pgid)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
}

// groupMembers lists the live (non-zombie) processes in process group pgid.
func groupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if pg, err := strconv.Atoi(fields[2]); err == nil && pg == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// acquireSlot reserves a free loopback address, cleans up after a previous owner, adds the
// address to lo and checks that nothing listens on its LDAP/Kerberos ports.
func acquireSlot(ctx context.Context) (*addrSlot, error) {
	var skipped []string
	for n := firstSlot; n <= lastSlot; n++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reserve a loopback address: %w", err)
		}
		f, err := tryLock(lockPath(n))
		if err != nil {
			return nil, fmt.Errorf("reserve a loopback address: %w", err)
		}
		if f == nil {
			continue // another DC (in this or another process) has it
		}
		cleanStale(n, f)
		s := &addrSlot{n: n, ip: slotIP(n), dir: slotDir(n), lock: f}
		if err := addLoopback(ctx, s.ip); err != nil {
			unlock(f)
			return nil, err
		}
		if busy := listening(s.ip, 636, 389, 88); busy != "" {
			skipped = append(skipped, fmt.Sprintf("%s (%s already in use by a process that is not ours)", s.ip, busy))
			unlock(f)
			continue
		}
		s.record(0)
		return s, nil
	}
	msg := fmt.Sprintf("no free loopback address among 127.0.1.%d-%d", firstSlot, lastSlot)
	if len(skipped) > 0 {
		msg += "; skipped: " + strings.Join(skipped, ", ")
	}
	return nil, errors.New(msg)
}

// record writes the slot's owner record (samba pid 0 = not running) into its lock file.
func (s *addrSlot) record(sambaPID int) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return
	}
	data, _ := json.Marshal(slotRecord{OwnerPID: os.Getpid(), SambaPID: sambaPID, Dir: s.dir, IP: s.ip,
		Since: time.Now().Format(time.RFC3339)})
	s.lock.Truncate(0)
	s.lock.WriteAt(append(data, '\n'), 0)
}

// release removes the address from lo and drops the lock.
func (s *addrSlot) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := delLoopback(s.ip)
	s.lock.Truncate(0)
	unlock(s.lock)
	s.lock = nil
	return err
}

func addLoopback(ctx context.Context, ip string) error {
	out, err := exec.CommandContext(ctx, "ip", "addr", "add", ip+"/32", "dev", "lo").CombinedOutput()
	// An address that is already there is fine ("RTNETLINK answers: File exists", or with newer
	// iproute2 "Error: ipv4: Address already assigned.").
	if err != nil && !strings.Contains(string(out), "File exists") && !strings.Contains(string(out), "already assigned") {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("add %s to lo: the ip command (iproute2) is missing", ip)
		}
		return fmt.Errorf("add %s to lo (ip addr add %s/32 dev lo): %v: %s", ip, ip, err, bytes.TrimSpace(out))
	}
	return nil
}

func delLoopback(ip string) error {
	out, err := exec.Command("ip", "addr", "del", ip+"/32", "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Cannot assign requested address") && !strings.Contains(string(out), "Address not found") {
		return fmt.Errorf("remove %s from lo: %v: %s", ip, err, bytes.TrimSpace(out))
	}
	return nil
}

// listening returns the first of ports that accepts a TCP connection on ip, or "".
func listening(ip string, ports ...int) string {
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(p)), 300*time.Millisecond)
		if err == nil {
			c.Close()
			return "port " + strconv.Itoa(p)
		}
	}
	return ""
}
