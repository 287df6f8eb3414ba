package builtinad

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// nm is a name as displayed and its ASCII form (for account names and
// email addresses).
type nm struct{ display, ascii string }

var givenNames = []nm{
	{"Anna", "Anna"}, {"Ben", "Ben"}, {"Carla", "Carla"}, {"David", "David"}, {"Elena", "Elena"}, {"Felix", "Felix"},
	{"Greta", "Greta"}, {"Hugo", "Hugo"}, {"Ines", "Ines"}, {"Jonas", "Jonas"}, {"Kira", "Kira"}, {"Lars", "Lars"},
	{"Maja", "Maja"}, {"Noah", "Noah"}, {"Olga", "Olga"}, {"Paul", "Paul"}, {"Quinn", "Quinn"}, {"Rosa", "Rosa"},
	{"Sven", "Sven"}, {"Tara", "Tara"}, {"Ugo", "Ugo"}, {"Vera", "Vera"}, {"William", "William"}, {"Xenia", "Xenia"},
	{"Yusuf", "Yusuf"}, {"Zoë", "Zoe"}, {"Łukasz", "Lukasz"}, {"Søren", "Soren"}, {"José", "Jose"},
	{"François", "Francois"}, {"Björn", "Bjorn"}, {"Ayşe", "Ayse"}, {"Małgorzata", "Malgorzata"}, {"Jürgen", "Jurgen"},
	{"Siobhán", "Siobhan"}, {"Chloé", "Chloe"}, {"Renée", "Renee"}, {"Ömer", "Omer"}, {"Dóra", "Dora"},
	{"Nuño", "Nuno"}, {"Ægir", "Aegir"}, {"Priya", "Priya"}, {"Mohammed", "Mohammed"}, {"Fatima", "Fatima"},
	{"Liam", "Liam"}, {"Emma", "Emma"}, {"Olivia", "Olivia"}, {"Lucas", "Lucas"}, {"Mia", "Mia"}, {"Ella", "Ella"},
}

var surnames = []nm{
	{"Smith", "Smith"}, {"Müller", "Mueller"}, {"García", "Garcia"}, {"Rossi", "Rossi"}, {"Novak", "Novak"},
	{"Kowalski", "Kowalski"}, {"Jensen", "Jensen"}, {"Ærø", "Aero"}, {"Ñúñez", "Nunez"}, {"Çelik", "Celik"},
	{"O'Brien", "OBrien"}, {"van der Berg", "vanderBerg"}, {"Łukasiewicz", "Lukasiewicz"}, {"Dubois", "Dubois"},
	{"Silva", "Silva"}, {"Ivanova", "Ivanova"}, {"Papadopoulos", "Papadopoulos"}, {"Andersson", "Andersson"},
	{"Larsen", "Larsen"}, {"Costa", "Costa"}, {"Schmidt", "Schmidt"}, {"Fischer", "Fischer"}, {"Weber", "Weber"},
	{"Wagner", "Wagner"}, {"Becker", "Becker"}, {"Hoffmann", "Hoffmann"}, {"Kim", "Kim"}, {"Lee", "Lee"},
	{"Chen", "Chen"}, {"Wang", "Wang"}, {"Patel", "Patel"}, {"Singh", "Singh"}, {"Khan", "Khan"}, {"Ahmed", "Ahmed"},
	{"Hernández", "Hernandez"}, {"López", "Lopez"}, {"Martín", "Martin"}, {"Öztürk", "Ozturk"}, {"Yılmaz", "Yilmaz"},
	{"Søndergaard", "Sondergaard"}, {"Kovács", "Kovacs"}, {"Horváth", "Horvath"}, {"Nowak", "Nowak"},
	{"Wiśniewski", "Wisniewski"}, {"Brown", "Brown"}, {"Taylor", "Taylor"}, {"Johansson", "Johansson"},
	{"Nielsen", "Nielsen"}, {"Moreau", "Moreau"}, {"Bianchi", "Bianchi"},
}

var cjkGiven = []nm{{"太郎", "Taro"}, {"花子", "Hanako"}, {"健", "Ken"}, {"由美", "Yumi"}, {"大輔", "Daisuke"}, {"さくら", "Sakura"}}
var cjkSurnames = []nm{{"山田", "Yamada"}, {"佐藤", "Sato"}, {"鈴木", "Suzuki"}, {"高橋", "Takahashi"}, {"田中", "Tanaka"}, {"中村", "Nakamura"}}

var departments = []string{"Sales", "Engineering", "Finance", "Support", "Marketing", "Human Resources", "Legal", "Operations"}

var titles = map[string][]string{
	"Sales":           {"Account Executive", "Sales Manager", "Sales Representative", "Key Account Manager"},
	"Engineering":     {"Software Engineer", "Senior Software Engineer", "Engineering Manager", "QA Engineer", "Site Reliability Engineer"},
	"Finance":         {"Accountant", "Financial Analyst", "Controller", "Payroll Specialist"},
	"Support":         {"Support Engineer", "Service Desk Analyst", "Support Team Lead"},
	"Marketing":       {"Marketing Manager", "Content Writer", "Product Marketing Manager"},
	"Human Resources": {"HR Generalist", "Recruiter", "HR Business Partner"},
	"Legal":           {"Counsel", "Paralegal", "Compliance Officer"},
	"Operations":      {"Operations Manager", "Facilities Coordinator", "Office Manager", "Logistics Planner"},
}

type site struct {
	name, phonePrefix string
	weight            int
}

var domainSites = map[string][]site{
	"corp":   {{"Berlin", "+49 30 5550", 45}, {"Lisbon", "+351 21 555", 35}, {"Tokyo", "+81 3 5550", 20}},
	"branch": {{"Oslo", "+47 22 55", 60}, {"Istanbul", "+90 212 555", 40}},
}

// person is one human of the generated company; an account in corp,
// branch, or both.
type person struct {
	given, sn nm
	cjk       bool
	corp      bool
	branch    bool
	local     string // email local part, ASCII, e.g. "anna.smith" (unique)
	special   string
	upperMail bool // corp mail "Anna.Smith@example.com" rather than lower case
}

// Special people, at fixed positions when there are at least minSpecial.
const minSpecial = 20

var specials = []struct {
	key         string
	given, sn   nm
	display, cn string
	both        bool
}{
	{"mallory", nm{"Mallory", "Mallory"}, nm{"Red", "Red"}, "Mallory \x1b[31mRed\x1b[0m", "Mallory Red", false},
	{"trudy", nm{"Trudy", "Trudy"}, nm{"Pwned", "Pwned"}, "Trudy\x1b]0;pwned\x07", "Trudy Pwned", false},
	{"eve", nm{"Eve", "Eve"}, nm{"Gnp", "Gnp"}, "Eve \u202Egnp.exe", "Eve Gnp", false},
	{"shared1", nm{"Dana", "Dana"}, nm{"Shared", "Shared"}, "", "", false},
	{"shared2", nm{"Dean", "Dean"}, nm{"Shared", "Shared"}, "", "", false},
	{"anna", nm{"Anna", "Anna"}, nm{"Smith", "Smith"}, "Smith, Anna", "Smith, Anna", true},
	{"zoe", nm{"Zoë", "Zoe"}, nm{"Łukasiewicz", "Lukasiewicz"}, "Zoë Łukasiewicz", "Zoë Łukasiewicz", false},
	{"yamada", nm{"太郎", "Taro"}, nm{"山田", "Yamada"}, "山田 太郎", "山田 太郎", false},
}

// makePeople draws the company's people from the seed.
func makePeople(seed int64, n int) []person {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	used := map[string]int{}
	people := make([]person, n)
	for i := range people {
		p := &people[i]
		if rng.IntN(100) < 8 {
			p.cjk = true
			p.given, p.sn = cjkGiven[rng.IntN(len(cjkGiven))], cjkSurnames[rng.IntN(len(cjkSurnames))]
		} else {
			p.given, p.sn = givenNames[rng.IntN(len(givenNames))], surnames[rng.IntN(len(surnames))]
		}
		switch r := rng.IntN(1000); {
		case r < 50:
			p.corp, p.branch = true, true
		case r < 50+633:
			p.corp = true
		default:
			p.branch = true
		}
		p.upperMail = rng.IntN(2) == 0
		if n >= minSpecial && i < len(specials) {
			sp := specials[i]
			p.special, p.given, p.sn, p.cjk = sp.key, sp.given, sp.sn, sp.key == "yamada"
			p.corp, p.branch = true, sp.both
		}
		base := strings.ToLower(asciiOnly(p.given.ascii) + "." + asciiOnly(p.sn.ascii))
		used[base]++
		p.local = base
		if c := used[base]; c > 1 {
			p.local = base + strconv.Itoa(c)
		}
	}
	return people
}

func asciiOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// titleLocal capitalizes each part of an email local part: anna.smith ->
// Anna.Smith.
func titleLocal(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, ".")
}

// genInfo records what the generator made, for tests to compare against.
type genInfo struct {
	accounts     int
	syncUsers    map[string]bool // lower-case sAMAccountName -> in the sync group (nested included, disabled included)
	directSync   map[string]bool
	pwUsers      map[string]bool // in the password group (nested included)
	outsiders    []string
	disabled     []string
	noMail       []string
	sharedMail   []string // two accounts of this domain with one email
	escapes      []string // display names with terminal escapes or bidi overrides
	commaCN      []string
	specials     map[string]string // special key -> sAMAccountName
	syncComputer string
}

// generate fills the domain with people, OUs and nested groups. Caller
// holds d.mu for writing.
func (d *Domain) generate(people []person, idx int, now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	must := func(e *entry, err *ldap.Error) *entry {
		if err != nil {
			panic(err)
		}
		return e
	}
	rng := rand.New(rand.NewPCG(uint64(d.srv.opts.Seed), uint64(idx+1)*0x51ed27))
	created := now.AddDate(-3, 0, 0)
	// The indexes will hold about everyone: sized once, not grown
	// step by step.
	d.byNDN, d.byGUID = sized(d.byNDN, len(people)), sized(d.byGUID, len(people))
	d.bySam, d.byUPN = sized(d.bySam, len(people)), sized(d.byUPN, len(people))
	gi := genInfo{syncUsers: map[string]bool{}, directSync: map[string]bool{}, pwUsers: map[string]bool{}, specials: map[string]string{}}

	sites := domainSites[d.Name]
	totalWeight := 0
	for _, s := range sites {
		totalWeight += s.weight
	}
	people0 := must(d.addOU("People", "", created))
	groupsOU := must(d.addOU("Groups", "", created))
	siteOU := map[string]*entry{}
	siteGroup := map[string]*entry{}
	deptGroup := map[string]*entry{}
	allEng := must(d.addGroup("All Engineering", groupsOU.dn, created))
	contractors := must(d.addGroup("Contractors", groupsOU.dn, created))
	pilot := must(d.addGroup("Password Rotation Pilot", groupsOU.dn, created))
	d.link(d.passwordGroup, pilot)
	for _, s := range sites {
		siteOU[s.name] = must(d.addOU(s.name, people0.dn, created))
		g := must(d.addGroup("Site "+s.name, groupsOU.dn, created))
		siteGroup[s.name] = g
		d.link(d.syncGroup, g)
		for _, dep := range departments {
			dg := must(d.addGroup(s.name+" "+dep, groupsOU.dn, created))
			deptGroup[s.name+"/"+dep] = dg
			d.link(g, dg)
			switch dep {
			case "Engineering":
				d.link(allEng, dg)
			case "Finance":
				d.link(pilot, dg)
			}
		}
	}
	// A cycle: All Engineering is inside the first site's engineering
	// group, which is inside All Engineering.
	d.link(deptGroup[sites[0].name+"/Engineering"], allEng)

	// Workstations; one was put in the sync group by mistake (KeyDesk
	// reads users only).
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("WS-%04d", i)
		c := must(d.newEntry(d.computers, "CN", name, kindComputer, []string{"top", "person", "organizationalPerson", "user", "computer"}, "Computer", created))
		c.set("sAMAccountName", name+"$")
		c.set("sAMAccountType", samTypeMachine)
		c.set("userAccountControl", "4096")
		c.set("dNSHostName", strings.ToLower(name)+"."+d.DNSName)
		c.set("objectSid", d.newSID())
		c.set("primaryGroupID", "515")
		d.bySam[strings.ToLower(name)+"$"] = c
		if i == 1 {
			d.link(d.syncGroup, c)
			gi.syncComputer = name + "$"
		}
	}

	company := "Example Corp"
	if d.Name == "branch" {
		company = "Example Corp Nordic AS"
	}
	samCount := map[string]int{}
	cnCount := map[string]int{}
	var sharedFirst string
	for pi := range people {
		p := &people[pi]
		if d.Name == "corp" && !p.corp || d.Name == "branch" && !p.branch {
			continue
		}
		// Site, department, title, phone.
		var st site
		if p.cjk && d.Name == "corp" {
			st = sites[len(sites)-1] // Tokyo
		} else {
			w := rng.IntN(totalWeight)
			for _, s := range sites {
				if w < s.weight {
					st = s
					break
				}
				w -= s.weight
			}
		}
		dep := departments[rng.IntN(len(departments))]
		title := titles[dep][rng.IntN(len(titles[dep]))]
		phone := ""
		if rng.IntN(10) != 0 {
			phone = fmt.Sprintf("%s %04d", st.phonePrefix, rng.IntN(10000))
		}
		// Names.
		display := p.given.display + " " + p.sn.display
		if p.cjk {
			display = p.sn.display + " " + p.given.display
		}
		cn := display
		comma := !p.cjk && rng.IntN(5) == 0
		if comma {
			display = p.sn.display + ", " + p.given.display
			cn = display
		}
		if p.special != "" {
			for _, sp := range specials {
				if sp.key == p.special && sp.display != "" {
					display, cn = sp.display, sp.cn
					comma = strings.Contains(cn, ",")
				}
			}
		}
		samBase := strings.ToLower(asciiOnly(p.given.ascii[:1] + p.sn.ascii))
		if len(samBase) > 18 {
			samBase = samBase[:18]
		}
		switch p.special {
		case "mallory", "trudy", "eve":
			samBase = p.special
		}
		samCount[samBase]++
		sam := samBase
		if c := samCount[samBase]; c > 1 {
			sam = samBase + strconv.Itoa(c)
		}
		// Email: corp "Anna.Smith@example.com" or "anna.smith@example.com";
		// the branch account of someone in both domains has the same
		// address in another case.
		mail := p.local + "@example.com"
		if p.upperMail {
			mail = titleLocal(p.local) + "@example.com"
		}
		if d.Name == "branch" && p.corp {
			if p.upperMail {
				mail = p.local + "@EXAMPLE.com"
			} else {
				mail = strings.ToUpper(p.local) + "@example.com"
			}
		}
		special := p.special != ""
		if p.special == "shared1" && d.Name == "corp" {
			sharedFirst = mail
		}
		if p.special == "shared2" && d.Name == "corp" && sharedFirst != "" {
			mail = strings.ToLower(sharedFirst)
			if mail == sharedFirst {
				mail = titleLocal(strings.TrimSuffix(sharedFirst, "@example.com")) + "@Example.com"
			}
		}
		noMail := !special && rng.IntN(50) == 0
		if noMail {
			mail = ""
		}
		disabled := !special && rng.IntN(50) == 0
		outsider := !special && rng.IntN(100) < 3
		parent := siteOU[st.name]
		if rng.IntN(20) == 0 {
			parent = d.users
		}
		u := User{Sam: sam, GivenName: p.given.display, SN: p.sn.display, DisplayName: display, Mail: mail, CN: cn,
			OU: parent.dn, Disabled: disabled, Password: genPassword(rng, sam, display),
			Extra: map[string][]string{"department": {dep}, "title": {title}, "company": {company}}}
		if phone != "" {
			u.Extra["telephoneNumber"] = []string{phone}
		}
		when := created.Add(time.Duration(rng.Int64N(int64(3 * 365 * 24 * time.Hour))))
		// Same name in the same OU: the admin added a number.
		cnKey := parent.ndn + "|" + strings.ToLower(cn)
		cnCount[cnKey]++
		for n := cnCount[cnKey]; n > 1 || d.byNDN[normRDN("CN", u.CN)+","+parent.ndn] != nil; n++ {
			u.CN = cn + " " + strconv.Itoa(n)
			cnCount[cnKey] = n
			if d.byNDN[normRDN("CN", u.CN)+","+parent.ndn] == nil {
				break
			}
		}
		e := must(d.addUserUnder(u, parent, when))
		// Passwords were set at different times.
		set := now.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
		e.pw.lastSet = set
		e.set("pwdLastSet", fileTime(set))
		e.whenChanged = set

		gi.accounts++
		lsam := strings.ToLower(sam)
		if special {
			gi.specials[p.special] = sam
		}
		if disabled {
			gi.disabled = append(gi.disabled, sam)
		}
		if noMail {
			gi.noMail = append(gi.noMail, sam)
		}
		if comma {
			gi.commaCN = append(gi.commaCN, sam)
		}
		switch p.special {
		case "mallory", "trudy", "eve":
			gi.escapes = append(gi.escapes, sam)
		case "shared1", "shared2":
			gi.sharedMail = append(gi.sharedMail, sam)
		}
		if outsider {
			gi.outsiders = append(gi.outsiders, sam)
			if rng.IntN(2) == 0 {
				d.link(contractors, e)
			}
			continue
		}
		gi.syncUsers[lsam] = true
		direct := !special && rng.IntN(10) == 0
		if direct {
			d.link(d.syncGroup, e)
			gi.directSync[lsam] = true
		} else {
			d.link(deptGroup[st.name+"/"+dep], e)
			if dep == "Finance" {
				gi.pwUsers[lsam] = true
			}
		}
		if !gi.pwUsers[lsam] && rng.IntN(100) < 9 {
			d.link(d.passwordGroup, e)
			gi.pwUsers[lsam] = true
		}
	}
	d.gen = gi
	return nil
}

// genPassword makes a password that satisfies the default policy (and
// contains no part of the names).
func genPassword(rng *rand.Rand, sam, display string) string {
	const (
		upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lower = "abcdefghijkmnpqrstuvwxyz"
		digit = "23456789"
		other = "!#%+-=?@_"
	)
	for {
		b := make([]byte, 0, 14)
		for i := 0; i < 3; i++ {
			b = append(b, upper[rng.IntN(len(upper))], lower[rng.IntN(len(lower))], digit[rng.IntN(len(digit))], other[rng.IntN(len(other))])
		}
		pw := string(b)
		if !containsName(pw, sam, display) {
			return pw
		}
	}
}

// sized is m in a map made for n more entries.
func sized[K comparable, V any](m map[K]V, n int) map[K]V {
	out := make(map[K]V, len(m)+n)
	maps.Copy(out, m)
	return out
}
