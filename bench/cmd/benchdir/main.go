// Command benchdir runs the directories that bench/run measures KeyDesk against, in a process
// of their own (so that the keydesk process measured holds only KeyDesk):
//
//	benchdir builtin -users N -out DIR [-pprof ADDR]   the built-in directory (corp and branch), N people
//	benchdir samba -set DIR -out DIR     Samba DCs on copies of a data set's templates
//	benchdir build -users N -set DIR     build a Samba data set: two domains of N/2 people each
//	benchdir attrs                       print the attributes KeyDesk reads for each member
//
// builtin and samba write DIR/keydesk.toml (with the password and CA files next to it) and
// DIR/domains.tsv (one line per domain: name, LDAPS URL, base DN, bind UPN, password file, CA
// file, sync group DN), print "ready" and serve until SIGINT or SIGTERM. On SIGUSR1 they change
// the department of 1% of the sync group's members in each domain, over LDAP as Administrator,
// and print "changed N"; on SIGUSR2 they change memberships and print "churned N": the built-in
// directory makes 1% as many of the demo's random changes (joins, leaves, renames, email
// changes, disables), Samba takes every 200th member out of its first direct group and puts as
// many people from outside the sync group into those groups (1% of the members changed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/internal/adtest"
	"keydesk/internal/builtinad"
	"keydesk/ldapsync"
)

// domain is what benchdir needs of a running domain, built-in or Samba.
type domain struct {
	name, url, baseDN, bindUPN, password, caFile, syncGroupDN string
	dial                                                      func(context.Context) (*ldap.Conn, error)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchdir builtin|samba|build|attrs [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "builtin":
		err = runBuiltin(ctx, os.Args[2:])
	case "samba":
		err = runSamba(ctx, os.Args[2:])
	case "build":
		err = runBuild(ctx, os.Args[2:])
	case "attrs":
		fmt.Println(strings.Join(ldapsync.UserAttributes, " "))
	default:
		err = fmt.Errorf("unknown command %q (want builtin, samba, build or attrs)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchdir:", err)
		os.Exit(1)
	}
}

func runBuiltin(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("builtin", flag.ExitOnError)
	users := fs.Int("users", 100000, "people over both domains")
	seed := fs.Int64("seed", 1, "seed of the generated directory")
	out := fs.String("out", "", "folder for keydesk.toml and domains.tsv")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address (to profile the directory)")
	fs.Parse(args)
	if *out == "" {
		return errors.New("builtin: -out is required")
	}
	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("builtin: listen for pprof: %w", err)
		}
		go http.Serve(ln, nil) // net/http/pprof registers on the default mux
	}
	start := time.Now()
	srv, err := builtinad.Start(ctx, builtinad.Options{Users: *users, Seed: *seed})
	if err != nil {
		return fmt.Errorf("start the built-in directory: %w", err)
	}
	defer srv.Close()
	fmt.Printf("started %d people in %s\n", *users, time.Since(start).Round(time.Millisecond))
	var doms []domain
	for _, d := range srv.Domains() {
		doms = append(doms, domain{name: d.Name, url: d.LDAPSURL, baseDN: d.BaseDN, bindUPN: d.AdminUPN,
			password: d.AdminPassword, caFile: srv.CAFile(), syncGroupDN: d.SyncGroupDN, dial: d.Dial})
	}
	churn := func() int {
		rng := rand.New(rand.NewPCG(uint64(*seed), uint64(time.Now().UnixNano())))
		n := max(1, *users/100)
		for range n {
			srv.Churn(rng)
		}
		return n
	}
	return serve(ctx, *out, doms, churn)
}

func runSamba(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("samba", flag.ExitOnError)
	set := fs.String("set", "", "the data set folder (built by benchdir build)")
	out := fs.String("out", "", "folder for keydesk.toml and domains.tsv")
	fs.Parse(args)
	if *set == "" || *out == "" {
		return errors.New("samba: -set and -out are required")
	}
	var doms []domain
	for _, name := range setDomains {
		dc, ds, err := adtest.StartDataset(ctx, filepath.Join(*set, name))
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		defer dc.Close()
		fmt.Printf("started %s (%d users, %d in the sync group) at %s\n", dc.Realm, ds.Users, ds.SyncMembers, dc.LDAPSURL)
		doms = append(doms, domain{name: name, url: dc.LDAPSURL, baseDN: dc.BaseDN, bindUPN: dc.AdminUPN,
			password: dc.AdminPassword, caFile: dc.CAFile, syncGroupDN: ds.SyncGroupDN, dial: dc.Dial})
	}
	return serve(ctx, *out, doms, func() int {
		n, err := changeMemberships(ctx, doms, 200)
		if err != nil {
			fmt.Println("error", err)
		}
		return n
	})
}

// setDomains are the domains of a data set, as folders of the set and names in KeyDesk.
var setDomains = []string{"corp", "branch"}

func runBuild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	users := fs.Int("users", 10000, "people over both domains")
	set := fs.String("set", "", "the data set folder to create")
	fs.Parse(args)
	if *set == "" {
		return errors.New("build: -set is required")
	}
	if _, err := os.Stat(filepath.Join(*set, "done")); err == nil {
		fmt.Println("already built:", *set)
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(setDomains))
	for i, name := range setDomains {
		dir := filepath.Join(*set, name)
		if _, err := adtest.LoadDataset(dir); err == nil {
			continue // built by an earlier run that stopped before the other domain was done
		}
		os.RemoveAll(dir) // an interrupted build
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = adtest.BuildDataset(ctx, dir, adtest.DatasetOptions{
				Realm: strings.ToUpper(name) + ".KEYDESK.TEST", Users: *users / len(setDomains), Peer: i,
				Log: func(format string, a ...any) {
					fmt.Printf(time.Now().Format("15:04:05 ")+format+"\n", a...)
				}})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*set, "done"), []byte(time.Now().Format(time.RFC3339)+"\n"), 0o644)
}

// serve writes the configuration, says "ready" and answers signals until ctx ends.
func serve(ctx context.Context, out string, doms []domain, churn func() int) error {
	if err := writeConfig(out, doms); err != nil {
		return err
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sig:
			switch {
			case s == syscall.SIGUSR1:
				n, err := changeDepartments(ctx, doms, 100)
				if err != nil {
					fmt.Println("error", err)
					continue
				}
				fmt.Println("changed", n)
			case churn != nil:
				fmt.Println("churned", churn())
			default:
				fmt.Println("error no churn here")
			}
		}
	}
}

// writeConfig writes out/keydesk.toml for the domains, in the shape keydesk demo writes, and
// out/domains.tsv for the script's ldapsearch.
func writeConfig(out string, doms []domain) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	var cfg, tsv strings.Builder
	cfg.WriteString("# Written by bench/cmd/benchdir.\n[sync]\ninterval = \"1h\"\njitter = \"5m\"\n\n")
	for _, d := range doms {
		pw := filepath.Join(out, d.name+".pw")
		if err := os.WriteFile(pw, []byte(d.password), 0o600); err != nil {
			return fmt.Errorf("write password file: %w", err)
		}
		ca := filepath.Join(out, d.name+"-ca.pem")
		data, err := os.ReadFile(d.caFile)
		if err != nil {
			return fmt.Errorf("read CA file: %w", err)
		}
		if err := os.WriteFile(ca, data, 0o644); err != nil {
			return fmt.Errorf("write CA file: %w", err)
		}
		fmt.Fprintf(&cfg, "[[domain]]\nname = %q\nurls = [%q]\nbase_dn = %q\nbind_dn = %q\nbind_password_file = %q\nca_file = %q\ntls = \"ldaps\"\ntimeout = \"10m\"\n\n",
			d.name, d.url, d.baseDN, d.bindUPN, pw, ca)
		fmt.Fprintf(&tsv, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.name, d.url, d.baseDN, d.bindUPN, pw, ca, d.syncGroupDN)
	}
	if err := os.WriteFile(filepath.Join(out, "keydesk.toml"), []byte(cfg.String()), 0o600); err != nil {
		return fmt.Errorf("write configuration: %w", err)
	}
	return os.WriteFile(filepath.Join(out, "domains.tsv"), []byte(tsv.String()), 0o644)
}

// changeDepartments gives every every-th member of each domain's sync group (in the order the
// directory returns them) a new department, and returns how many it changed.
func changeDepartments(ctx context.Context, doms []domain, every int) (int, error) {
	total := 0
	stamp := time.Now().Format("150405")
	for _, d := range doms {
		c, err := d.dial(ctx)
		if err != nil {
			return total, fmt.Errorf("%s: %w", d.name, err)
		}
		filter := "(&(objectClass=user)(!(objectClass=computer))(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(d.syncGroupDN) + "))"
		res, err := c.SearchWithPaging(ldap.NewSearchRequest(d.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			filter, []string{"1.1"}, nil), 1000)
		if err != nil {
			c.Close()
			return total, fmt.Errorf("%s: read members: %w", d.name, err)
		}
		for i, e := range res.Entries {
			if i%every != 0 {
				continue
			}
			m := ldap.NewModifyRequest(e.DN, nil)
			m.Replace("department", []string{"Changed " + stamp})
			if err := c.Modify(m); err != nil {
				c.Close()
				return total, fmt.Errorf("%s: modify %s: %w", d.name, e.DN, err)
			}
			total++
		}
		c.Close()
	}
	return total, nil
}

// changeMemberships takes every every-th member of each domain's sync group (in the order the
// directory returns them) out of its first direct group, and adds as many people who are not
// members to those groups: joins and leaves through nested groups. It returns how many
// memberships it changed.
func changeMemberships(ctx context.Context, doms []domain, every int) (int, error) {
	total := 0
	for _, d := range doms {
		c, err := d.dial(ctx)
		if err != nil {
			return total, fmt.Errorf("%s: %w", d.name, err)
		}
		chain := "(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(d.syncGroupDN) + ")"
		res, err := c.SearchWithPaging(ldap.NewSearchRequest(d.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(&(objectClass=user)(!(objectClass=computer))"+chain+")", []string{"memberOf"}, nil), 1000)
		if err != nil {
			c.Close()
			return total, fmt.Errorf("%s: read members: %w", d.name, err)
		}
		var groups []string
		for i, e := range res.Entries {
			g := e.GetAttributeValue("memberOf")
			if i%every != 0 || g == "" {
				continue
			}
			m := ldap.NewModifyRequest(g, nil)
			m.Delete("member", []string{e.DN})
			if err := c.Modify(m); err != nil {
				c.Close()
				return total, fmt.Errorf("%s: take %s out of %s: %w", d.name, e.DN, g, err)
			}
			groups = append(groups, g)
			total++
		}
		out, err := c.Search(ldap.NewSearchRequest(d.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, len(groups), 0, false,
			"(&(objectClass=user)(!(objectClass=computer))(!(isCriticalSystemObject=TRUE))(!"+chain+"))", []string{"1.1"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			c.Close()
			return total, fmt.Errorf("%s: read people outside the sync group: %w", d.name, err)
		}
		for i, e := range out.Entries {
			if i >= len(groups) {
				break // the DC may give more than the size limit asked
			}
			m := ldap.NewModifyRequest(groups[i], nil)
			m.Add("member", []string{e.DN})
			if err := c.Modify(m); err != nil {
				c.Close()
				return total, fmt.Errorf("%s: put %s into %s: %w", d.name, e.DN, groups[i], err)
			}
			total++
		}
		c.Close()
	}
	return total, nil
}
