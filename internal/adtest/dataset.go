package adtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Large data sets for benchmarks (bench/run): a domain provisioned once, filled offline with
// ldbadd (much faster than adds over LDAP, which derive Kerberos keys for every password), and
// kept as a template outside the repository; StartDataset runs a DC on a copy of it.

// datasetMeta is the file that marks a data set template complete and describes it.
const datasetMeta = ".adtest-dataset.json"

// datasetChunk is how many users one ldbadd run adds (each run reports progress).
const datasetChunk = 2500

// DatasetOptions describes the data of one domain of a data set.
type DatasetOptions struct {
	Realm string // e.g. "CORP.KEYDESK.TEST"
	Users int    // people in this domain
	// Peer numbers the domain within its set (0, 1, ...). Person i with i%SharedEvery == 0 has
	// the same email in every domain of the set (in another case in odd peers), so that KeyDesk
	// merges their accounts into one employee.
	Peer        int
	SharedEvery int                           // default 10: 10% of the people are in every domain
	Log         func(format string, a ...any) // progress, optional
}

// Dataset describes a built data set template (one domain).
type Dataset struct {
	Template
	Users           int    `json:"users"`
	SyncMembers     int    `json:"sync_members"` // users in the sync group's chain
	SyncGroupDN     string `json:"sync_group_dn"`
	PasswordGroupDN string `json:"password_group_dn"`
	OUs             int    `json:"ous"`
	Groups          int    `json:"groups"`
	BuildSeconds    string `json:"build_seconds"`
}

// Template is the exported form of a template's metadata.
type Template struct {
	ProvisionDir  string `json:"provision_dir"`
	Realm         string `json:"realm"`
	AdminPassword string `json:"admin_password"`
	SambaVersion  string `json:"samba_version"`
	Created       string `json:"created"`
}

// LoadDataset reads the description of the data set template in dir; it fails when the build
// did not finish.
func LoadDataset(dir string) (*Dataset, error) {
	data, err := os.ReadFile(filepath.Join(dir, datasetMeta))
	if err != nil {
		return nil, fmt.Errorf("adtest: data set %s is not built: %w", dir, err)
	}
	var ds Dataset
	if err := json.Unmarshal(data, &ds); err != nil {
		return nil, fmt.Errorf("adtest: data set %s: %w", dir, err)
	}
	return &ds, nil
}

// BuildDataset provisions a domain into dir (which must not exist) and fills it, offline, with
// o.Users people spread over many OUs, the sync group with nested groups and the password group.
// The layout, for person i of a domain with n people:
//
//   - OU=Team t,OU=Site s,OU=Bench: 5 sites, about 100 people per team OU;
//   - "Hideez Users Sync" (CN=Users) holds "Sync Site s" (OU=Groups,OU=Bench), which holds
//     "Sync Site s Team t": 60% of the people are members of a team group (three levels below
//     the sync group), 25% of a site group (two), 10% direct members, 5% (i%20 == 19) are outside
//     the sync group (in "Contractors");
//   - "Security Key Auto Password Change" (CN=Users) holds 10% directly (i%10 == 3) and 5%
//     through "Password Rotation Pilot" (i%20 == 6);
//   - 2% are disabled (i%50 == 7), 2% have no email (i%50 == 13); accounts have no password
//     (PASSWD_NOTREQD), which spares the Kerberos key derivation.
func BuildDataset(ctx context.Context, dir string, o DatasetOptions) (ds *Dataset, err error) {
	if reason := Available(); reason != "" {
		return nil, errors.New("adtest: " + reason)
	}
	opts := Options{Realm: o.Realm}
	if err := opts.normalize(); err != nil {
		return nil, fmt.Errorf("adtest: %w", err)
	}
	if o.Users <= 0 {
		return nil, errors.New("adtest: a data set needs Users > 0")
	}
	if o.SharedEvery <= 0 {
		o.SharedEvery = 10
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("adtest: %s exists: remove it to build the data set again", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("adtest: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	start := time.Now()
	v, _ := sambaVersion()
	ds = &Dataset{Template: Template{ProvisionDir: dir, Realm: opts.Realm, AdminPassword: opts.AdminPassword, SambaVersion: v}}
	logf("%s: provisioning", opts.Realm)
	if err := provision(ctx, opts.Realm, opts.AdminPassword, dir); err != nil {
		return nil, fmt.Errorf("adtest: %w", err)
	}
	g := newDatasetGen(opts.Realm, o)
	ds.Users, ds.SyncMembers, ds.OUs, ds.Groups = o.Users, g.syncMembers(), len(g.ous()), 0
	ds.SyncGroupDN, ds.PasswordGroupDN = g.syncGroupDN(), g.passwordGroupDN()

	load := func(what, ldif string) error {
		f := filepath.Join(dir, "load.ldif")
		if err := os.WriteFile(f, []byte(ldif), 0o600); err != nil {
			return err
		}
		defer os.Remove(f)
		cmd := exec.CommandContext(ctx, "ldbadd", "--configfile="+filepath.Join(dir, "etc", "smb.conf"),
			"-H", filepath.Join(dir, "private", "sam.ldb"), "--nosync", f)
		cmd.WaitDelay = 5 * time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ldbadd (%s): %v: %s", what, err, lastLines(string(bytes.TrimSpace(out)), 10))
		}
		return nil
	}
	if err := load("OUs", g.ouLDIF()); err != nil {
		return nil, fmt.Errorf("adtest: %w", err)
	}
	for lo := 0; lo < o.Users; lo += datasetChunk {
		hi := min(lo+datasetChunk, o.Users)
		t := time.Now()
		if err := load(fmt.Sprintf("users %d-%d", lo, hi-1), g.userLDIF(lo, hi)); err != nil {
			return nil, fmt.Errorf("adtest: %w", err)
		}
		logf("%s: %d/%d users (%.1f ms/user, %s so far)", opts.Realm, hi, o.Users,
			float64(time.Since(t).Milliseconds())/float64(hi-lo), time.Since(start).Round(time.Second))
	}
	groups, n := g.groupLDIF()
	ds.Groups = n
	if err := load("groups", groups); err != nil {
		return nil, fmt.Errorf("adtest: %w", err)
	}
	ds.Created = time.Now().Format(time.RFC3339)
	ds.BuildSeconds = fmt.Sprintf("%.0f", time.Since(start).Seconds())
	data, _ := json.MarshalIndent(ds, "", "  ")
	// Written last: its presence marks the data set complete.
	if err := writeFileSync(filepath.Join(dir, datasetMeta), data, 0o600); err != nil {
		return nil, fmt.Errorf("adtest: write data set metadata: %w", err)
	}
	logf("%s: built in %s", opts.Realm, time.Since(start).Round(time.Second))
	return ds, nil
}

// StartDataset starts a DC on a copy of the data set template in dir (on a free loopback address,
// as Start does) and waits until it answers an Administrator bind (with the template's password).
// The copy is removed by Close.
func StartDataset(ctx context.Context, dir string) (dc *DC, ds *Dataset, err error) {
	if reason := Available(); reason != "" {
		return nil, nil, errors.New("adtest: " + reason)
	}
	if ds, err = LoadDataset(dir); err != nil {
		return nil, nil, err
	}
	opts := Options{Realm: ds.Realm, AdminPassword: ds.AdminPassword}
	if err := opts.normalize(); err != nil {
		return nil, nil, fmt.Errorf("adtest: %w", err)
	}
	if err := os.MkdirAll(baseDir(), 0o755); err != nil {
		return nil, nil, fmt.Errorf("adtest: create base directory: %w", err)
	}
	sweepStale()
	slot, err := acquireSlot(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("adtest: %w", err)
	}
	domain := strings.ToLower(opts.Realm)
	d := &DC{
		Realm: opts.Realm, NetBIOS: netbiosOf(opts.Realm), Domain: domain, BaseDN: baseDNOf(opts.Realm),
		HostName: strings.ToLower(hostLabel) + "." + domain, Addr: slot.ip,
		LDAPSURL: "ldaps://" + slot.ip + ":636", LDAPURL: "ldap://" + slot.ip + ":389",
		AdminUPN: "Administrator@" + domain, AdminPassword: opts.AdminPassword,
		Dir: slot.dir, slot: slot,
	}
	d.AdminDN = "CN=Administrator,CN=Users," + d.BaseDN
	d.UserPassword = genPassword()
	d.logPath = filepath.Join(d.Dir, "samba.log")
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	tmpl := &template{Dir: dir, ProvisionDir: ds.ProvisionDir, Realm: ds.Realm, AdminPassword: ds.AdminPassword}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("adtest: create %s: %w", d.Dir, err)
	}
	if err := tmpl.copyTo(ctx, d.Dir); err != nil {
		return nil, nil, fmt.Errorf("adtest: copy data set %s: %w", dir, err)
	}
	os.Remove(filepath.Join(d.Dir, datasetMeta))
	if err := d.writeCerts(); err != nil {
		return nil, nil, fmt.Errorf("adtest: certificates for %s: %w", d.Realm, err)
	}
	if err := d.writeConf(tmpl); err != nil {
		return nil, nil, fmt.Errorf("adtest: smb.conf for %s: %w", d.Realm, err)
	}
	if err := d.startProcess(ctx, d.AdminPassword); err != nil {
		return nil, nil, err
	}
	return d, ds, nil
}

// datasetGen generates the LDIF of one domain of a data set, deterministically.
type datasetGen struct {
	o      DatasetOptions
	base   string // DC=corp,DC=keydesk,DC=test
	domain string // corp.keydesk.test
	prefix string // sAMAccountName prefix: the first letter of the NetBIOS name, lower case
	teams  int    // team OUs per site
}

const datasetSites = 5

func newDatasetGen(realm string, o DatasetOptions) *datasetGen {
	teams := max(2, (o.Users/100+datasetSites-1)/datasetSites)
	return &datasetGen{o: o, base: baseDNOf(realm), domain: strings.ToLower(realm),
		prefix: strings.ToLower(netbiosOf(realm)[:1]), teams: teams}
}

func (g *datasetGen) bench() string       { return "OU=Bench," + g.base }
func (g *datasetGen) groupsOU() string    { return "OU=Groups," + g.bench() }
func (g *datasetGen) syncGroupDN() string { return "CN=Hideez Users Sync,CN=Users," + g.base }
func (g *datasetGen) passwordGroupDN() string {
	return "CN=Security Key Auto Password Change,CN=Users," + g.base
}
func (g *datasetGen) siteOU(s int) string    { return fmt.Sprintf("OU=Site %d,%s", s, g.bench()) }
func (g *datasetGen) teamOU(s, t int) string { return fmt.Sprintf("OU=Team %d,%s", t, g.siteOU(s)) }
func (g *datasetGen) siteGroup(s int) string {
	return fmt.Sprintf("CN=Sync Site %d,%s", s, g.groupsOU())
}
func (g *datasetGen) teamGroup(s, t int) string {
	return fmt.Sprintf("CN=Sync Site %d Team %d,%s", s, t, g.groupsOU())
}

// place is the site and team of person i.
func (g *datasetGen) place(i int) (site, team int) {
	return i % datasetSites, (i / datasetSites) % g.teams
}

func (g *datasetGen) ous() []string {
	out := []string{g.bench(), g.groupsOU()}
	for s := range datasetSites {
		out = append(out, g.siteOU(s))
		for t := range g.teams {
			out = append(out, g.teamOU(s, t))
		}
	}
	return out
}

func (g *datasetGen) syncMembers() int {
	n := 0
	for i := range g.o.Users {
		if i%20 != 19 {
			n++
		}
	}
	return n
}

var (
	dsGiven   = []string{"Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Karin", "Liam", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sven", "Tara", "Yusuf"}
	dsSurname = []string{"Smith", "Muller", "Garcia", "Rossi", "Novak", "Dubois", "Jensen", "Kowalski", "Silva", "Tanaka", "Weber", "Lopez", "Berg", "Fischer", "Moreau", "Nowak"}
	dsDept    = []string{"Engineering", "Finance", "Sales", "Support", "Operations", "Legal", "Marketing", "Research"}
)

func (g *datasetGen) sam(i int) string { return fmt.Sprintf("%s%06d", g.prefix, i) }

func (g *datasetGen) userDN(i int) string {
	s, t := g.place(i)
	given, sn := dsGiven[i%len(dsGiven)], dsSurname[(i/len(dsGiven))%len(dsSurname)]
	return fmt.Sprintf("CN=%s %s %s,%s", given, sn, g.sam(i), g.teamOU(s, t))
}

func (g *datasetGen) mail(i int) string {
	given, sn := dsGiven[i%len(dsGiven)], dsSurname[(i/len(dsGiven))%len(dsSurname)]
	if i%g.o.SharedEvery == 0 {
		if g.o.Peer%2 == 1 {
			return fmt.Sprintf("%s.%s.%06d@EXAMPLE.com", given, sn, i)
		}
		return strings.ToLower(fmt.Sprintf("%s.%s.%06d@example.com", given, sn, i))
	}
	return strings.ToLower(fmt.Sprintf("%s.%s.%s@%s", given, sn, g.sam(i), g.domain))
}

func (g *datasetGen) ouLDIF() string {
	var b strings.Builder
	for _, dn := range g.ous() {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\n\n", dn)
	}
	return b.String()
}

func (g *datasetGen) userLDIF(lo, hi int) string {
	var b strings.Builder
	for i := lo; i < hi; i++ {
		given, sn := dsGiven[i%len(dsGiven)], dsSurname[(i/len(dsGiven))%len(dsSurname)]
		dept := dsDept[(i/7)%len(dsDept)]
		uac := 544 // NORMAL_ACCOUNT | PASSWD_NOTREQD
		if i%50 == 7 {
			uac |= 2 // disabled
		}
		fmt.Fprintf(&b, "dn: %s\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@%s\n", g.userDN(i), g.sam(i), g.sam(i), g.domain)
		fmt.Fprintf(&b, "givenName: %s\nsn: %s\ndisplayName: %s %s\n", given, sn, given, sn)
		if i%50 != 13 {
			fmt.Fprintf(&b, "mail: %s\n", g.mail(i))
		}
		fmt.Fprintf(&b, "department: %s\ntitle: %s specialist\ncompany: KeyDesk Bench\n", dept, dept)
		if i%10 != 9 {
			fmt.Fprintf(&b, "telephoneNumber: +49 30 %07d\n", i)
		}
		fmt.Fprintf(&b, "userAccountControl: %d\n\n", uac)
	}
	return b.String()
}

// groupLDIF returns the groups, innermost first (an add names members that exist), and their
// number.
func (g *datasetGen) groupLDIF() (string, int) {
	team := map[[2]int][]string{}
	site := map[int][]string{}
	var direct, contractors, pwDirect, pilot []string
	for i := range g.o.Users {
		dn := g.userDN(i)
		s, t := g.place(i)
		switch {
		case i%20 == 19:
			contractors = append(contractors, dn)
		case i%10 == 0:
			direct = append(direct, dn)
		case i%4 == 1:
			site[s] = append(site[s], dn)
		default:
			team[[2]int{s, t}] = append(team[[2]int{s, t}], dn)
		}
		switch {
		case i%10 == 3:
			pwDirect = append(pwDirect, dn)
		case i%20 == 6:
			pilot = append(pilot, dn)
		}
	}
	var b strings.Builder
	n := 0
	group := func(dn string, members []string) {
		n++
		cn := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "CN=")
		fmt.Fprintf(&b, "dn: %s\nobjectClass: group\nsAMAccountName: %s\n", dn, cn)
		for _, m := range members {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	for s := range datasetSites {
		for t := range g.teams {
			group(g.teamGroup(s, t), team[[2]int{s, t}])
		}
	}
	var sites []string
	for s := range datasetSites {
		members := site[s]
		for t := range g.teams {
			members = append(members, g.teamGroup(s, t))
		}
		group(g.siteGroup(s), members)
		sites = append(sites, g.siteGroup(s))
	}
	group(g.syncGroupDN(), append(sites, direct...))
	group("CN=Contractors,"+g.groupsOU(), contractors)
	pilotDN := "CN=Password Rotation Pilot," + g.groupsOU()
	group(pilotDN, pilot)
	group(g.passwordGroupDN(), append(pwDirect, pilotDN))
	return b.String(), n
}
