package builtinad

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Options configures the built-in directory.
type Options struct {
	Seed  int64  // data generator seed (default 1)
	Users int    // number of people to generate (default 300)
	Host  string // listen address host, default "127.0.0.1"; ports are random
	// Empty generates no data: only the two domains, the built-in accounts
	// (Administrator, Guest, krbtgt) and groups, and the two KeyDesk groups
	// (empty).
	Empty  bool
	Logger *slog.Logger // optional
}

// Server is the running built-in directory: two domains, each with its own
// domain controller.
type Server struct {
	opts    Options
	log     *slog.Logger
	domains []*Domain
	dir     string
	ca      *certAuthority
	caFile  string
	closed  atomic.Bool
	once    sync.Once
	pool    *x509.CertPool
}

// Start generates a CA and the DCs' certificates, the directory data, and
// starts the listeners. Close releases everything.
func Start(ctx context.Context, opts Options) (s *Server, err error) {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Users <= 0 {
		opts.Users = 300
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	s = &Server{opts: opts, log: opts.Logger}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	if s.dir, err = os.MkdirTemp("", "keydesk-builtinad-"); err != nil {
		return nil, fmt.Errorf("builtinad: %w", err)
	}
	if s.ca, err = newCA(); err != nil {
		return nil, fmt.Errorf("builtinad: create CA: %w", err)
	}
	s.caFile = filepath.Join(s.dir, "ca.pem")
	if err := os.WriteFile(s.caFile, s.ca.pem, 0o644); err != nil {
		return nil, fmt.Errorf("builtinad: %w", err)
	}
	s.pool = x509.NewCertPool()
	s.pool.AddCert(s.ca.cert)

	now := time.Now().UTC().Truncate(time.Second)
	for i, name := range []string{"corp", "branch"} {
		d, err := s.newDomain(name, i, now)
		if err != nil {
			return nil, fmt.Errorf("builtinad: domain %s: %w", name, err)
		}
		s.domains = append(s.domains, d)
	}
	if !opts.Empty {
		people := makePeople(opts.Seed, opts.Users)
		var wg sync.WaitGroup
		errs := make([]error, len(s.domains))
		for i, d := range s.domains {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.mu.Lock()
				defer d.mu.Unlock()
				errs[i] = d.generate(people, i, now)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("builtinad: generate data: %w", err)
		}
	}
	for _, d := range s.domains {
		if err := s.serve(ctx, d); err != nil {
			return nil, fmt.Errorf("builtinad: domain %s: %w", d.Name, err)
		}
		if s.log != nil {
			s.log.Info("builtinad: domain ready", "domain", d.Name, "ldaps", d.LDAPSURL, "ldap", d.LDAPURL, "objects", len(d.all))
		}
	}
	return s, nil
}

// serve issues the DC's certificate and starts its two listeners.
func (s *Server) serve(ctx context.Context, d *Domain) error {
	dnsNames := []string{d.HostName, d.DNSName, "localhost"}
	var ips []net.IP
	if ip := net.ParseIP(s.opts.Host); ip != nil {
		ips = append(ips, ip)
	} else {
		dnsNames = append(dnsNames, s.opts.Host)
	}
	ips = append(ips, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	cert, err := s.ca.issue(d.HostName, dnsNames, ips)
	if err != nil {
		return fmt.Errorf("issue certificate: %w", err)
	}
	d.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	d.CAFile = s.caFile
	for _, ldaps := range []bool{true, false} {
		l, err := newListener(ctx, d, ldaps, s.opts.Host)
		if err != nil {
			return err
		}
		d.lns = append(d.lns, l)
	}
	d.LDAPSURL = "ldaps://" + d.lns[0].addr
	d.LDAPURL = "ldap://" + d.lns[1].addr
	return nil
}

// Close stops the listeners and removes the CA file's directory. It is
// idempotent.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	s.once.Do(func() {
		s.closed.Store(true)
		for _, d := range s.domains {
			d.lnMu.Lock()
			for _, l := range d.lns {
				errs = append(errs, l.close())
			}
			d.lnMu.Unlock()
		}
		if s.dir != "" {
			errs = append(errs, os.RemoveAll(s.dir))
		}
	})
	return errors.Join(errs...)
}

// Domains returns the domains: "corp", then "branch".
func (s *Server) Domains() []*Domain { return append([]*Domain(nil), s.domains...) }

// Domain returns the domain with this name ("corp", "branch"), or nil.
func (s *Server) Domain(name string) *Domain {
	for _, d := range s.domains {
		if strings.EqualFold(d.Name, name) {
			return d
		}
	}
	return nil
}

// CAFile is the PEM file of the CA that signed the DCs' certificates (in
// a directory of the server's, removed by Close).
func (s *Server) CAFile() string { return s.caFile }

// CAPEM is the CA certificate in PEM.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.ca.pem...) }

func (s *Server) caPool() *x509.CertPool { return s.pool }

// strongPassword makes a random password that satisfies AD's complexity
// rules and contains no name.
func strongPassword() string {
	const alnum = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 18)
	rand.Read(b)
	out := []byte("Kd-")
	for _, c := range b {
		out = append(out, alnum[int(c)%len(alnum)])
	}
	return string(out) + "7!"
}

// newDomain builds a domain's fixed content: the domain head with the
// default password policy, the standard containers, the configuration
// objects of its DC (dsServiceName and invocationId), the built-in
// accounts and groups, and the two KeyDesk groups.
func (s *Server) newDomain(name string, idx int, now time.Time) (*Domain, error) {
	dns := name + ".example.test"
	d := &Domain{
		Name: name, Realm: strings.ToUpper(dns), NetBIOS: strings.ToUpper(name), DNSName: dns,
		BaseDN: "DC=" + name + ",DC=example,DC=test", HostName: "dc1." + dns,
		srv: s, byNDN: map[string]*entry{}, byGUID: map[string]*entry{}, bySam: map[string]*entry{}, byUPN: map[string]*entry{},
		AdminPassword: strongPassword(), UserPassword: strongPassword(),
	}
	d.rng = mrand.New(mrand.NewPCG(uint64(s.opts.Seed), uint64(idx+1)*0x9e3779b97f4a7c15))
	for i := range d.sidSub {
		d.sidSub[i] = 1_000_000_000 + uint32(d.rng.IntN(3_000_000_000))
	}
	d.nextRID = 1102
	d.configDN = "CN=Configuration," + d.BaseDN
	d.schemaDN = "CN=Schema," + d.configDN
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.buildBase(now); err != nil {
		return nil, err
	}
	d.AdminDN = d.admin.dn
	d.AdminUPN = "Administrator@" + d.DNSName
	d.SyncGroupDN = d.syncGroup.dn
	d.PasswordGroupDN = d.passwordGroup.dn
	return d, nil
}

// newRoot creates the head of a naming context (its parent is not in the
// tree: a subtree search of the domain does not enter the configuration).
func (d *Domain) newRoot(dn, rdnType, rdnValue string, k kind, classes []string, category string, when time.Time) (*entry, *ldap.Error) {
	e, err := d.newEntry(nil, rdnType, rdnValue, k, classes, category, when)
	if err != nil {
		return nil, err
	}
	delete(d.byNDN, e.ndn)
	nd, _ := normDN(dn)
	e.dn, e.ndn = dn, nd
	d.byNDN[nd] = e
	return e, nil
}

func (d *Domain) buildBase(now time.Time) error {
	created := now.AddDate(-3, 0, 0)
	must := func(e *entry, err *ldap.Error) *entry {
		if err != nil {
			panic(err)
		}
		return e
	}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("build the domain: %v", r)
			}
		}()
		head := must(d.newRoot(d.BaseDN, "DC", d.Name, kindDomain, []string{"top", "domain", "domainDNS"}, "Domain-DNS", created))
		head.set("instanceType", "5")
		head.set("objectSid", string(sidBytes(21, d.sidSub[0], d.sidSub[1], d.sidSub[2])))
		head.set("minPwdLength", "7")
		head.set("pwdProperties", "1")
		head.set("pwdHistoryLength", "24")
		head.set("maxPwdAge", "-36288000000000") // 42 days
		head.set("minPwdAge", "-864000000000")   // 1 day
		head.set("lockoutThreshold", "0")
		head.set("lockoutDuration", "-18000000000")
		head.set("lockOutObservationWindow", "-18000000000")
		head.set("msDS-Behavior-Version", "7")
		head.set("nTMixedDomain", "0")
		d.head = head

		container := func(parent *entry, name string) *entry {
			e := must(d.newEntry(parent, "CN", name, kindContainer, []string{"top", "container"}, "Container", created))
			e.set("isCriticalSystemObject", "TRUE")
			return e
		}
		d.users = container(head, "Users")
		d.computers = container(head, "Computers")
		builtin := must(d.newEntry(head, "CN", "Builtin", kindContainer, []string{"top", "builtinDomain"}, "Builtin-Domain", created))
		builtin.set("objectSid", string(sidBytes(32)))
		dcOU := must(d.newEntry(head, "OU", "Domain Controllers", kindOU, []string{"top", "organizationalUnit"}, "Organizational-Unit", created))
		d.deletedObjects = container(head, "Deleted Objects")
		d.deletedObjects.set("isDeleted", "TRUE")
		d.deletedObjects.deleted = true

		// The configuration naming context, as far as KeyDesk reads it.
		config := must(d.newRoot(d.configDN, "CN", "Configuration", kindContainer, []string{"top", "configuration"}, "Configuration", created))
		schema := must(d.newEntry(config, "CN", "Schema", kindContainer, []string{"top", "dMD"}, "DMD", created))
		_ = schema
		sites := must(d.newEntry(config, "CN", "Sites", kindContainer, []string{"top", "sitesContainer"}, "Sites-Container", created))
		site := must(d.newEntry(sites, "CN", "Default-First-Site-Name", kindContainer, []string{"top", "site"}, "Site", created))
		servers := must(d.newEntry(site, "CN", "Servers", kindContainer, []string{"top", "serversContainer"}, "Servers-Container", created))
		server := must(d.newEntry(servers, "CN", "DC1", kindContainer, []string{"top", "server"}, "Server", created))
		server.set("dNSHostName", d.HostName)
		ntds := must(d.newEntry(server, "CN", "NTDS Settings", kindOther, []string{"top", "applicationSettings", "nTDSDSA"}, "NTDS-DSA", created))
		inv := make([]byte, 16)
		rand.Read(inv) // a new database instance on every start
		ntds.set("invocationId", string(inv))
		ntds.set("options", "1")
		d.ntds = ntds

		dc := must(d.newEntry(dcOU, "CN", "DC1", kindComputer, []string{"top", "person", "organizationalPerson", "user", "computer"}, "Computer", created))
		dc.set("sAMAccountName", "DC1$")
		dc.set("sAMAccountType", samTypeMachine)
		dc.set("userAccountControl", "532480")
		dc.set("dNSHostName", d.HostName)
		dc.set("objectSid", string(sidBytes(21, d.sidSub[0], d.sidSub[1], d.sidSub[2], 1000)))
		dc.set("primaryGroupID", "516")
		d.bySam["dc1$"] = dc
		server.set("serverReference", dc.dn)

		acct := func(sam string, rid uint32, uac int, pw string, desc string) *entry {
			e, lerr := d.addUser(User{Sam: sam, NoPassword: pw == "", Password: pw, Extra: map[string][]string{"description": {desc}}}, created)
			if lerr != nil {
				panic(lerr)
			}
			e.set("objectSid", string(sidBytes(21, d.sidSub[0], d.sidSub[1], d.sidSub[2], rid)))
			e.set("userAccountControl", fmt.Sprint(uac))
			return e
		}
		d.admin = acct("Administrator", 500, 66048, d.AdminPassword, "Built-in account for administering the computer/domain")
		d.admin.set("adminCount", "1")
		acct("Guest", 501, 66082, "", "Built-in account for guest access to the computer/domain")
		acct("krbtgt", 502, 514, "", "Key Distribution Center Service Account")

		group := func(parent *entry, name string, sid string) *entry {
			g, lerr := d.addGroup(name, parent.dn, created)
			if lerr != nil {
				panic(lerr)
			}
			if sid != "" {
				g.set("objectSid", sid)
			}
			return g
		}
		dom := func(rid uint32) string { return string(sidBytes(21, d.sidSub[0], d.sidSub[1], d.sidSub[2], rid)) }
		admins := group(d.users, "Domain Admins", dom(512))
		group(d.users, "Domain Users", dom(513))
		accountOps := group(builtin, "Account Operators", string(sidBytes(32, 548)))
		accountOps.set("groupType", groupTypeBuiltinLoc)
		accountOps.set("sAMAccountType", samTypeAlias)
		d.link(admins, d.admin)
		d.adminGroups = []*entry{admins, accountOps}

		d.syncGroup = group(d.users, "Hideez Users Sync", "")
		d.syncGroup.set("description", "Users who get security keys (KeyDesk)")
		d.passwordGroup = group(d.users, "Security Key Auto Password Change", "")
		d.passwordGroup.set("description", "Users whose passwords KeyDesk rotates")
	}()
	return err
}
