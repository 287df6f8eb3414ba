package rotation

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var domainPolicy = Policy{Source: "domain corp", MinLength: 7, Complexity: true, History: 24}

func TestCheck(t *testing.T) {
	ann := Account{SAMAccountName: "ann.lee", DisplayName: "Ann-Marie Lee, Jr."}
	tests := []struct {
		name     string
		p        Policy
		a        Account
		password string
		rule     string // "" when it passes
		says     string
	}{
		{"strong", domainPolicy, ann, "Tr0ub4dor&3x", "", ""},
		{"too short", domainPolicy, ann, "Ab1!", "length", "4 characters, and the policy (domain corp) wants at least 7"},
		{"length counts characters, not bytes", Policy{MinLength: 8}, ann, "ÄÖÜäöüß1", "", ""},
		{"two kinds", domainPolicy, ann, "abcdefgh12", "complexity", "2 kinds of character"},
		{"three kinds are enough", domainPolicy, ann, "abcdefgh12!", "", ""},
		{"letters without case count as a kind", domainPolicy, ann, "abcdef12漢字", "", ""},
		{"the account name", domainPolicy, ann, "xANN.LEEx1!", "name", "part of the account's name"},
		{"a token of the display name", domainPolicy, ann, "Qq1!marieZ", "name", "5 characters of it"},
		{"a token of the account name", domainPolicy, ann, "Qq1!LeeZ", "name", ""},
		{"tokens under three characters are allowed", domainPolicy, ann, "Qq1!JrZz", "", ""},
		{"no complexity: no name rule", Policy{MinLength: 4}, ann, "annlee", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.p, tt.a, tt.password)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("Check refused it: %v", err)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) || !errors.Is(err, ErrViolation) || v.Rule != tt.rule || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Check = %v; want the %s rule, saying %q", err, tt.rule, tt.says)
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Errorf("the message quotes the password: %v", err)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	ann := Account{SAMAccountName: "ann.lee", DisplayName: "Ann Lee"}
	tests := []struct {
		name    string
		p       Policy
		o       Options
		length  int
		allowed string
	}{
		{"default", domainPolicy, Options{}, DefaultLength, upper + lower + digits + symbols},
		{"shortest", domainPolicy, Options{Length: MinLength}, MinLength, upper + lower + digits + symbols},
		{"longest", domainPolicy, Options{Length: MaxLength}, MaxLength, upper + lower + digits + symbols},
		{"a policy longer than asked", Policy{MinLength: 30, Complexity: true}, Options{Length: 20}, 30, upper + lower + digits + symbols},
		{"layout-safe", domainPolicy, Options{LayoutSafe: true}, DefaultLength, without(upper+lower, layoutMovedLetters) + digits + layoutSafeSymbols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[rune]bool{}
			unique := map[string]bool{}
			const draws = 2000
			for range draws {
				pw, err := Generate(tt.p, ann, tt.o)
				if err != nil {
					t.Fatal(err)
				}
				if utf8.RuneCountInString(pw) != tt.length {
					t.Fatalf("%d characters, want %d", len(pw), tt.length)
				}
				if err := Check(tt.p, ann, pw); err != nil {
					t.Fatalf("a generated password fails the policy: %v", err)
				}
				for _, set := range []string{upper, lower, digits} {
					if !strings.ContainsAny(pw, set) {
						t.Fatalf("a generated password lacks one of %q", set)
					}
				}
				if !strings.ContainsAny(pw, symbols) {
					t.Fatal("a generated password has no symbol")
				}
				for _, r := range pw {
					if !strings.ContainsRune(tt.allowed, r) {
						t.Fatalf("a generated password holds %q, not in the allowed set", r)
					}
					seen[r] = true
				}
				unique[pw] = true
			}
			// Every allowed character turns up: the whole set is drawn from.
			if len(seen) != utf8.RuneCountInString(tt.allowed) {
				t.Errorf("%d of the %d allowed characters turned up in %d passwords", len(seen), utf8.RuneCountInString(tt.allowed), draws)
			}
			if len(unique) != draws {
				t.Errorf("%d passwords repeat in %d draws", draws-len(unique), draws)
			}
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Policy
		o    Options
		says string
	}{
		{"too short", domainPolicy, Options{Length: 8}, "use 14 to 64"},
		{"too long", domainPolicy, Options{Length: 65}, "use 14 to 64"},
		{"a policy beyond the longest", Policy{Source: "PSO admins", MinLength: 80}, Options{}, "the policy (PSO admins) wants at least 80"},
	} {
		if _, err := Generate(tt.p, Account{}, tt.o); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.says)
		}
	}
}

// TestGenerateAvoidsTheName: names whose parts are likely in a short
// layout-safe password are still never in one.
func TestGenerateAvoidsTheName(t *testing.T) {
	a := Account{SAMAccountName: "x", DisplayName: "Kb2 3+4 5*6 7-8 9/0"}
	for range 3000 {
		pw, err := Generate(domainPolicy, a, Options{Length: MinLength, LayoutSafe: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range nameTokens(a) {
			if strings.Contains(strings.ToLower(pw), strings.ToLower(tok)) {
				t.Fatalf("a generated password contains the name part %q", tok)
			}
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	a := Account{SAMAccountName: "ann.lee", DisplayName: "Ann Lee"}
	for b.Loop() {
		if _, err := Generate(domainPolicy, a, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
