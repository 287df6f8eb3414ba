package ldapsync_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"keydesk/internal/adtest"
	"keydesk/ldapsync"
)

// TestPasswordWritesAgainstSamba resets and changes passwords on Samba and
// checks that each refusal is translated into the rule that failed: an
// admin reset works and the old password stops working; a reset that is
// too short or not complex is refused as such; a user's own change before
// the minimum age is refused as too young, and once the age allows it, an
// earlier password is refused by the history; a service account without
// the reset right is told which delegation it lacks.
func TestPasswordWritesAgainstSamba(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dc := adtest.StartT(t, adtest.Options{Realm: "PWWRITE.KEYDESK.TEST"})
	d := domainOf(t, dc, "pwwrite")
	alice := adtest.User{Sam: "alice", DisplayName: "Alice Liddell"}
	aliceDN, err := dc.AddUser(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	first := dc.PasswordFor(alice)
	admin, err := ldapsync.Dial(ctx, d, dc.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	const p1, p2, p3 = "Kq7#vW2!pZ9rTx4m", "Hn3$jR8@cY6wLb5e", "Gd5%tM1^sQ7nVx8k"
	if err := admin.ResetPassword(ctx, aliceDN, p1); err != nil {
		t.Fatalf("admin reset: %v", err)
	}
	if err := ldapsync.VerifyPassword(ctx, d, aliceDN, p1); err != nil {
		t.Errorf("bind with the new password: %v", err)
	}
	if err := ldapsync.VerifyPassword(ctx, d, aliceDN, first); !errors.Is(err, ldapsync.ErrWrongPassword) {
		t.Errorf("bind with the old password: %v, want ErrWrongPassword", err)
	}

	refused := func(what string, err error, reason, says string) {
		t.Helper()
		var pe *ldapsync.PasswordError
		if !errors.As(err, &pe) || pe.Reason != reason || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v; want a refusal for %s saying %q", what, err, reason, says)
		}
	}
	refused("a short reset", admin.ResetPassword(ctx, aliceDN, "Ab1!"), ldapsync.RefusedLength, "shorter than the policy allows")
	refused("a simple reset", admin.ResetPassword(ctx, aliceDN, "onlylowercaseletters"), ldapsync.RefusedComplexity, "complexity rule")
	refused("the user's change before the minimum age", ldapsync.ChangeOwnPassword(ctx, d, aliceDN, p1, p2), ldapsync.RefusedTooYoung, "minimum password age")
	if err := ldapsync.VerifyPassword(ctx, d, aliceDN, p1); err != nil {
		t.Errorf("a refused change changed the password: %v", err)
	}
	if err := ldapsync.ChangeOwnPassword(ctx, d, aliceDN, "Wrong1!Password", p2); !errors.Is(err, ldapsync.ErrWrongPassword) {
		t.Errorf("a change with a wrong old password: %v, want ErrWrongPassword", err)
	}

	// No minimum age: the user's change works, and history applies.
	if err := dc.Modify(ctx, dc.BaseDN, map[string][]string{"minPwdAge": {"0"}}); err != nil {
		t.Fatal(err)
	}
	if err := ldapsync.ChangeOwnPassword(ctx, d, aliceDN, p1, p2); err != nil {
		t.Fatalf("the user's own change: %v", err)
	}
	if err := ldapsync.VerifyPassword(ctx, d, aliceDN, p2); err != nil {
		t.Errorf("bind after the user's change: %v", err)
	}
	refused("an earlier password again", ldapsync.ChangeOwnPassword(ctx, d, aliceDN, p2, p1), ldapsync.RefusedHistory, "used before")
	if err := ldapsync.ChangeOwnPassword(ctx, d, aliceDN, p2, p3); err != nil {
		t.Errorf("a fresh password after the history refusal: %v", err)
	}

	// A service account that is a plain user may not reset passwords.
	svc := adtest.User{Sam: "svc-plain", DisplayName: "Plain Service"}
	svcDN, err := dc.AddUser(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	ds := d
	ds.BindDN = svcDN
	plain, err := ldapsync.Dial(ctx, ds, dc.PasswordFor(svc))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	refused("a reset by a plain user", plain.ResetPassword(ctx, aliceDN, p1), ldapsync.RefusedRights, `delegate "Reset password"`)
}
