package builtinad

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Churn makes one random, plausible change in a random domain (a join, a
// leave, an email change, a rename, a disable) and returns a one-line
// description. The demo calls it every minute.
func (s *Server) Churn(rng *rand.Rand) string {
	return s.churnWith(rng, func(d *Domain) string { return d.churn(rng) })
}

// ChurnPeople is Churn without the changes of a group: a change of one
// person's own entry (an email, a rename, a disable or an enable).
func (s *Server) ChurnPeople(rng *rand.Rand) string {
	return s.churnWith(rng, func(d *Domain) string {
		people := d.people()
		if len(people) == 0 {
			return d.Name + ": no change: nobody to change"
		}
		return d.changePerson(rng, people, 2+rng.IntN(3))
	})
}

func (s *Server) churnWith(rng *rand.Rand, change func(*Domain) string) string {
	if s.closed.Load() || len(s.domains) == 0 {
		return "no change: the directory is closed"
	}
	d := s.domains[rng.IntN(len(s.domains))]
	d.mu.Lock()
	defer d.mu.Unlock()
	msg := change(d)
	if s.log != nil {
		s.log.Info("builtinad: churn", "change", msg)
	}
	return msg
}

// people are the live user accounts of the domain (not the built-in ones).
func (d *Domain) people() []*entry {
	var out []*entry
	for _, e := range d.all {
		if e.kind != kindUser || e.deleted || e == d.admin {
			continue
		}
		if sam := strings.ToLower(e.first("samaccountname")); sam != "guest" && sam != "krbtgt" {
			out = append(out, e)
		}
	}
	return out
}

func label(e *entry) string {
	name := e.first("displayname")
	if name == "" {
		name = e.rdnValue
	}
	return fmt.Sprintf("%q (%s)", name, e.first("samaccountname"))
}

func (d *Domain) churn(rng *rand.Rand) string {
	people := d.people()
	sync := d.chainOf(d.syncGroup)
	var in, out []*entry
	for _, e := range people {
		if _, ok := sync.set[e]; ok {
			in = append(in, e)
		} else {
			out = append(out, e)
		}
	}
	pick := func(es []*entry) *entry { return es[rng.IntN(len(es))] }
	prefix := d.Name + ": "
	switch op := rng.IntN(5); {
	case op == 0 || len(in) == 0: // a join
		if len(out) > 0 && rng.IntN(2) == 0 {
			e := pick(out)
			d.link(d.syncGroup, e)
			d.touch(d.syncGroup)
			return prefix + label(e) + " joined " + d.syncGroup.rdnValue
		}
		return prefix + d.hire(rng)
	case op == 1: // a leave
		e := pick(in)
		if rng.IntN(3) == 0 {
			desc := label(e)
			if err := d.tombstone(e); err != nil {
				return prefix + "no change: " + err.Error()
			}
			return prefix + desc + " left the company (account deleted)"
		}
		var left []string
		for g := range e.memberOf {
			if _, nested := sync.set[g]; nested || g == d.syncGroup {
				d.unlink(g, e)
				d.touch(g)
				left = append(left, g.rdnValue)
			}
		}
		slices.Sort(left)
		return prefix + label(e) + " was removed from " + strings.Join(left, ", ")
	default:
		return d.changePerson(rng, people, op)
	}
}

// changePerson changes one person's own entry: op 2 an email, 3 a rename,
// 4 a disable (or an enable).
func (d *Domain) changePerson(rng *rand.Rand, people []*entry, op int) string {
	pick := func(es []*entry) *entry { return es[rng.IntN(len(es))] }
	prefix := d.Name + ": "
	switch op {
	case 2: // an email change
		e := pick(people)
		old := e.first("mail")
		local, _, _ := strings.Cut(old, "@")
		if local == "" {
			local = strings.ToLower(asciiOnly(e.first("givenname")) + "." + asciiOnly(e.first("sn")))
		}
		domains := []string{"example.com", "example.org", "mail.example.com"}
		mail := strings.ToLower(local) + "@" + domains[rng.IntN(len(domains))]
		if strings.EqualFold(mail, old) {
			mail = strings.ToLower(local) + strconv.Itoa(rng.IntN(90)+10) + "@example.com"
		}
		e.set("mail", mail)
		d.touch(e)
		if old == "" {
			return prefix + label(e) + " got an email address: " + mail
		}
		return prefix + label(e) + " changed email from " + old + " to " + mail
	case 3: // a rename (new surname)
		e := pick(people)
		before := label(e)
		sn := surnames[rng.IntN(len(surnames))]
		given := e.first("givenname")
		if given == "" {
			given = e.first("samaccountname")
		}
		display := given + " " + sn.display
		cn := display
		for try := 2; d.rename(e, cn) != nil; try++ {
			if try > 50 {
				return prefix + "no change: could not rename " + before
			}
			cn = display + " " + strconv.Itoa(try)
		}
		e.set("sn", sn.display)
		e.set("displayName", display)
		d.touch(e)
		return prefix + before + " was renamed to " + strconv.Quote(display)
	default: // a disable (sometimes an enable)
		e := pick(people)
		disabled := e.uac()&uacAccountDisable != 0
		if disabled {
			d.setDisabled(e, false)
			return prefix + label(e) + " was enabled again"
		}
		d.setDisabled(e, true)
		return prefix + label(e) + " was disabled"
	}
}

// hire adds a new person to a department group.
func (d *Domain) hire(rng *rand.Rand) string {
	g, s := givenNames[rng.IntN(len(givenNames))], surnames[rng.IntN(len(surnames))]
	base := strings.ToLower(asciiOnly(g.ascii[:1] + s.ascii))
	sam := base
	for i := 2; d.bySam[sam] != nil; i++ {
		sam = base + strconv.Itoa(i)
	}
	var groups []*entry
	for x := range d.chainOf(d.syncGroup).set {
		if x.kind == kindGroup && len(x.memberOf) > 0 && strings.Contains(x.rdnValue, " ") && !strings.HasPrefix(x.rdnValue, "Site ") && x.rdnValue != "All Engineering" {
			groups = append(groups, x)
		}
	}
	slices.SortFunc(groups, func(a, b *entry) int { return a.id - b.id })
	display := g.display + " " + s.display
	dep := departments[rng.IntN(len(departments))]
	u := User{Sam: sam, GivenName: g.display, SN: s.display, DisplayName: display, CN: display + " " + sam,
		Mail:     strings.ToLower(asciiOnly(g.ascii)+"."+asciiOnly(s.ascii)) + "." + sam + "@example.com",
		Password: genPassword(rng, sam, display),
		Extra:    map[string][]string{"department": {dep}, "title": {titles[dep][0]}}}
	e, err := d.addUser(u, d.now())
	if err != nil {
		return "no change: " + err.Error()
	}
	target := d.syncGroup
	if len(groups) > 0 {
		target = groups[rng.IntN(len(groups))]
	}
	d.link(target, e)
	d.touch(target)
	return label(e) + " was hired and added to " + target.rdnValue
}
