package builtinad

import "keydesk/internal/adtest"

// The User types of this package and of adtest convert into each other, so
// that one scenario can seed either directory.
var _ = User(adtest.User{})
