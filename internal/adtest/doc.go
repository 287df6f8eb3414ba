// Package adtest is test support: it provisions real Samba Active Directory domain controllers on
// private loopback addresses so that keydesk's AD code can be tested against a real directory
// (LDAPS with a verified certificate, StartTLS, the refusal of simple binds over plain LDAP,
// unicodePwd resets, nested membership with the LDAP_MATCHING_RULE_IN_CHAIN filter, ...).
//
// It is meant for tests only (it needs root, the samba packages, see .ci/install-samba, and the
// iproute2 "ip" command). Typical use:
//
//	func TestSomething(t *testing.T) {
//		dc := adtest.StartT(t, adtest.Options{Realm: "CORP.KEYDESK.TEST"})
//		ctx := t.Context()
//		dn, err := dc.AddUser(ctx, adtest.User{Sam: "asmith", GivenName: "Anna", SN: "Smith",
//			CN: "Smith, Anna", Mail: "anna.smith@corp.keydesk.test"})
//		...
//	}
//
// Without Samba (or without root) Require and StartT skip the test; with KEYDESK_REQUIRE_AD=1 in the
// environment they fail it instead, so that CI cannot silently skip the AD tests.
//
// How it works:
//
//   - Each DC listens on its own address 127.0.1.N (N in 2..250), since Samba's ports are fixed.
//     The address is reserved by an exclusive flock on <base>/addr-N.lock, held for the DC's life,
//     so several test processes (go test runs packages in parallel) can run DCs side by side.
//     The address is added to lo as a /32 and removed again by Close.
//   - A domain is provisioned once per realm (and Samba version) into a cached template directory
//     <base>/template-<realm>-<version>-<format>, under a file lock; each DC is a copy (cp -a) of
//     it in <base>/dc-N with smb.conf rewritten for the copy's paths and address. Options.NoTemplate
//     (or KEYDESK_ADTEST_NO_TEMPLATE=1) provisions afresh instead.
//   - Each start issues a fresh test CA and DC certificate (ECDSA P-256, positive serials, SANs: the
//     IP, dc1.<realm> and <realm>), because the certificate Samba generates itself has a negative
//     serial that Go's crypto/x509 rejects.
//   - Only the ldap, cldap and kdc services run. Samba runs in the foreground (samba -i) with its
//     standard input connected to a pipe held by the test process: when the test process dies, for
//     whatever reason, Samba sees EOF and terminates. A stale DC left anyway (e.g. after SIGKILL of
//     a parent while samba was wedged) is killed by pid/process group and its directory removed by
//     the next process that takes its address.
//
// <base> is $KEYDESK_ADTEST_DIR, or os.TempDir()/keydesk-adtest; all processes that run DCs at
// the same time must use the same one, since the address locks live there. With
// KEYDESK_ADTEST_KEEP=1 a DC that fails to start is stopped but its directory is kept.
//
// Speed (Samba 4.17 on 2 cores): provisioning a template takes about 4 s (once per realm), a DC
// starts from the template in about 0.5-1 s (provisioning afresh: about 4 s), Stop takes about
// 0.1 s and Restart about 0.4 s. smb.conf sets ldb:nosync (no fsync per transaction). Adding users
// with a password runs at about 60/s whatever the number of connections: Samba derives the
// Kerberos AES keys (PBKDF2-HMAC-SHA1, 2 x 4096 rounds) inside its serialized write transaction.
// Users created with User.NoPassword (PASSWD_NOTREQD) are added at about 400-450/s.
//
// Password policy: the DCs keep Samba's default domain policy (complexity on, minimum length 7,
// history 24, maximum age 42 days, minimum age 1 day, no lockout). Generated passwords satisfy it;
// administrative resets (SetPassword) are not subject to history or minimum age.
package adtest
