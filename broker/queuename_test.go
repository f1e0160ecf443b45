package broker

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// ValidateQueueName accepts exactly what the documented rule says, the
// regular expression ^[A-Za-z0-9_-]{1,64}$, on edge cases and random names.
func TestValidateQueueNameMatchesRule(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	names := []string{"", "a", "default", "emails_2-b", strings.Repeat("x", 64), strings.Repeat("x", 65),
		"a.b", "a b", "é", "a\n", "\x00", "-", "_", "Z9", "a/b", "a:b", "a*", "日本"}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := "aZ09_-.:/ *\x00\xffé"
	for range 5000 {
		var sb strings.Builder
		for range r.IntN(70) {
			sb.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		names = append(names, sb.String())
	}
	for _, n := range names {
		err := ValidateQueueName(n)
		if want := rule.MatchString(n); (err == nil) != want {
			t.Fatalf("ValidateQueueName(%q) = %v, rule says valid=%v", n, err, want)
		}
		if err != nil && !errors.Is(err, ErrInvalidQueueName) {
			t.Fatalf("ValidateQueueName(%q) = %v, not ErrInvalidQueueName", n, err)
		}
	}
}

func BenchmarkValidateQueueName(b *testing.B) {
	for b.Loop() {
		if ValidateQueueName("emails_high-priority") != nil {
			b.Fatal("invalid")
		}
	}
}
