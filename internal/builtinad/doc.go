// Package builtinad is KeyDesk's built-in directory: an LDAP server inside
// the process that behaves like Active Directory for what KeyDesk uses. It
// serves the one-command demo (keydesk demo, on a machine without AD) and
// fast tests.
//
// It is a test double, not a directory server: tests against real Samba AD
// domain controllers (internal/adtest) remain the proof that KeyDesk works
// with AD. Where this package and Samba or AD disagree, they win.
//
// # What it serves
//
// Start runs two domains, "corp" (CORP.EXAMPLE.TEST, DC=corp,DC=example,DC=test)
// and "branch" (BRANCH.EXAMPLE.TEST), each with its own "domain controller":
// an LDAPS port and an LDAP port that takes StartTLS, both on random ports of
// Options.Host (127.0.0.1), with a certificate issued by a CA generated at
// start (CAFile, CAPEM; the certificate names the host, dc1.<domain>, the
// domain, localhost and the loopback addresses).
//
// What it reproduces of AD:
//
//   - Binds: simple bind by DN, UPN (user@corp.example.test) or CORP\user, only
//     over TLS (without: result 8 with AD's "00002028 ... SSL\TLS" text);
//     result 49 with AD's "80090308 ... data 52e" (wrong password), 533
//     (disabled), 773 (pwdLastSet 0: must change), 532 (older than maxPwdAge)
//     or 525 (the name matches no account: real AD often says 52e there too,
//     to hide which accounts exist; KeyDesk must treat both as bad
//     credentials). Anonymous binds succeed, but only RootDSE can then be read
//     (other operations: result 1, "000004DC ... a successful bind must be
//     completed").
//   - RootDSE: dsServiceName (the DC's NTDS Settings object, which has a
//     binary invocationId, new on every Start, as after a restore),
//     highestCommittedUSN, defaultNamingContext, dnsHostName, namingContexts,
//     supportedLDAPVersion, and AD's supportedControl list including
//     LDAP_SERVER_POLICY_HINTS (1.2.840.113556.1.4.2239, which Samba lacks)
//     but without VLV and server-side sorting, which are not implemented.
//   - Searches: base/one/subtree scopes; and, or, not, equality (strings
//     case-insensitive; objectGUID, objectSid and other binary attributes
//     byte for byte), presence, substrings, >= and <= (numeric for numbers),
//     approximate (as equality), the in-chain rule 1.2.840.113556.1.4.1941 on
//     memberOf (nested groups, cycles) and member, the bitwise rules 803/804,
//     plain memberOf; objectClass matches any class of the hierarchy and
//     objectCategory takes short names (person, group, computer). Attribute
//     lists ("*", "1.1", none, names in any case) and size limits are
//     honoured; a base that does not exist gives 32 with matchedDN. A search
//     with more than 1000 results without paging gets the first 1000 and
//     result 4, as AD (MaxPageSize). The paged-results control pages with at
//     most 1000 entries a page and per-connection cookies (an unknown cookie
//     gets 12, as AD); show deleted reveals tombstones. A critical control
//     the double does not implement (VLV, sorting, ...) gets 12; unknown
//     non-critical controls are ignored. Large member attributes come back in
//     ranges (member;range=0-1499). "<GUID=...>" works as a base DN.
//   - USNs: a per-domain counter; every change gives the changed object a new
//     uSNChanged. Adding or removing a member changes the group, not the
//     member (memberOf is a backlink), as in AD.
//   - Deletes make tombstones: isDeleted TRUE, moved under CN=Deleted Objects
//     as "CN=<name>\0ADEL:<guid>", same objectGUID, links and most attributes
//     removed.
//   - Passwords, stored only as salted SHA-256 hashes: unicodePwd (UTF-16LE of
//     the quoted password) only over TLS (else 53); an administrator reset is
//     a Replace (others get 50, INSUFF_ACCESS_RIGHTS); a user's change is a
//     Delete of the old value and an Add of the new in one request (a wrong
//     old password gets 19, "00000056"). The domain head's policy applies
//     (minPwdLength 7, complexity, pwdHistoryLength 24, minPwdAge 1 day; a
//     Modify of the domain head changes it): refusals are 19 with AD's
//     "0000052D ... CONSTRAINT_ATT_TYPE ... unicodePwd" text, followed by a
//     line that names the rule (Samba's wording; AD does not say). A reset
//     skips the history unless the policy-hints control (value SEQUENCE {
//     INTEGER 1 }) is sent.
//   - Writes over LDAP: modify of ordinary attributes by Administrator and the
//     members of Domain Admins and Account Operators (others get 50). Adds and
//     deletes are refused (53), renames cannot be sent (see below): the
//     directory changes through the
//     Go API (Domain.AddUser, Delete, ...), which mirrors internal/adtest's DC
//     so that a test can run one scenario against either: User converts from
//     and to adtest.User, and Domain has the DC's fields and methods that
//     scenarios use (LDAPSURL, LDAPURL, BaseDN, CAFile, AdminUPN, AdminPassword,
//     AddUser(s), AddGroup, AddOU, AddMembers, RemoveMembers, Modify, Delete,
//     DeleteTree, SetDisabled, SetPassword, Stop, Restart, Dial, DialAs). One
//     difference: a domain here always has the two KeyDesk groups (SyncGroupDN,
//     PasswordGroupDN), where a fresh Samba DC has neither.
//
// # What it does not
//
// No Kerberos, NTLM or SASL binds, no referrals, no DirSync, no ranged
// attributes other than member, no schema checks beyond a few system-only
// attributes, no account lockout, no accountExpires, no WhoAmI (gldap's
// extended responses carry no value). gldap (the LDAP
// library underneath) drops the connection on ModifyDN, Compare and Abandon
// requests instead of answering them.
//
// # The generated data
//
// From Options.Seed, deterministically (only timestamps, passwords and the
// invocationId differ between two starts with the same seed), Options.Users
// people (default 300; 100,000 start in a few seconds):
//
//   - about 2/3 in corp only, 1/3 in branch only, and 5% in both, with the same
//     email in another case (Anna.Smith@example.com / anna.smith@EXAMPLE.com);
//   - sites (corp: Berlin, Lisbon, Tokyo; branch: Oslo, Istanbul) with an OU
//     each under OU=People (5% of the accounts are in CN=Users instead);
//     departments, titles, companies, phone numbers (10% have none);
//   - nested groups in OU=Groups: "Hideez Users Sync" (in CN=Users) holds
//     "Site <site>", which holds "<site> <department>", which holds the people:
//     90% of the members are members only through two levels of nesting, 10%
//     are direct members; "All Engineering" and "<first site> Engineering"
//     contain each other (a cycle);
//   - 3% of the accounts are outside the sync group (half of them in
//     "Contractors"), 2% are disabled (and still members), 2% have no email;
//   - "Security Key Auto Password Change" (in CN=Users) holds about 20%: the
//     Finance departments through "Password Rotation Pilot" (nested) and 9%
//     of the others directly;
//   - a workstation account (WS-0001$) is a direct member of the sync group,
//     as happens by mistake: KeyDesk must read users only;
//   - with at least 20 people, fixed cases in corp: three display names with
//     terminal escapes or a bidi override ("Mallory \x1b[31mRed\x1b[0m",
//     "Trudy\x1b]0;pwned\x07", "Eve \u202Egnp.exe"), two accounts sharing one
//     email in different case (Dana and Dean Shared), CN=Smith\, Anna (also in
//     branch), Zoë Łukasiewicz and 山田 太郎; elsewhere 20% of the names are
//     "Surname, Given" (a comma in the DN) and 8% are Japanese;
//   - every account has a random password that satisfies the policy (nobody
//     knows it: SetPassword gives a known one).
//
// Besides the people, each domain has Administrator (AdminDN, AdminUPN,
// AdminPassword: a random password per Start; member of Domain Admins),
// disabled Guest and krbtgt, Domain Admins, Domain Users, Account Operators
// (in CN=Builtin), the DC's computer account in OU=Domain Controllers, and the
// configuration objects of its DC (CN=NTDS Settings,CN=DC1,CN=Servers,...,
// CN=Configuration,<base>), a naming context of its own that subtree searches
// of the domain do not enter. Options.Empty leaves out the people, OUs,
// groups and workstations.
//
// Everything is safe for concurrent use: each domain's data is behind a
// sync.RWMutex; searches render their entries under the read lock and write
// them to the network after releasing it.
package builtinad
