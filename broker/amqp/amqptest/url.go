package amqptest

import (
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// defaultURL is the broker URL tried when $WARREN_AMQP_URL is not set.
const defaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// urlEnv names the environment variable that points tests at a broker.
const urlEnv = "WARREN_AMQP_URL"

// installHint is what to run when no broker can be found.
const installHint = "run `apt-get install -y rabbitmq-server && rabbitmq-server -detached`, or set " + urlEnv

// shared is the broker URL resolved once per test binary.
var shared struct {
	once sync.Once
	url  string
	err  error // one line, already redacted
	node *Node // the throwaway node, when one had to be started
}

// URL returns the AMQP URL of a reachable broker for integration tests.
//
// It tries, once per test binary: the URL in $WARREN_AMQP_URL, or
// amqp://guest:guest@127.0.0.1:5672/ when that is unset, with an AMQP handshake of
// at most 2 s. When an explicitly set
// $WARREN_AMQP_URL does not answer, the test fails (a typo must not pass silently
// against another broker). When the default does not answer and rabbitmq-server is
// installed, one throwaway node is started and shared by every test of the binary;
// it dies with the test process. Otherwise the test fails with one line saying what
// to run. URL never skips a test, in CI or elsewhere, and never prints a password.
func URL(t testing.TB) string {
	t.Helper()
	shared.once.Do(resolveShared)
	if shared.err != nil {
		t.Fatal(shared.err.Error())
	}
	return shared.url
}

func resolveShared() {
	raw, explicit := os.LookupEnv(urlEnv)
	if !explicit || raw == "" {
		raw, explicit = defaultURL, false
	}
	shared.url, shared.node, shared.err = resolve(raw, explicit)
}

// resolve returns raw if a broker answers there; else, unless raw was set
// explicitly, the URL of a freshly started node.
func resolve(raw string, explicit bool) (string, *Node, error) {
	err := reachable(raw, 2*time.Second)
	if err == nil {
		return raw, nil, nil
	}
	if explicit {
		return "", nil, fmt.Errorf("amqptest: no RabbitMQ at %s (from $%s): %v; start that broker or unset %s",
			redact(raw), urlEnv, err, urlEnv)
	}
	if _, lookErr := serverScript(); lookErr != nil {
		return "", nil, fmt.Errorf("amqptest: no RabbitMQ at %s (%v) and rabbitmq-server is not installed: %s",
			redact(raw), err, installHint)
	}
	n, startErr := newNode()
	if startErr == nil {
		if startErr = n.start(); startErr != nil {
			n.destroy()
		}
	}
	if startErr != nil {
		return "", nil, fmt.Errorf("amqptest: no RabbitMQ at %s (%v), and starting a throwaway node failed: %v",
			redact(raw), err, oneLine(startErr.Error()))
	}
	return n.URL(), n, nil
}

// reachable reports whether an AMQP handshake with the broker at amqpURL completes
// within timeout (the connection is closed again).
func reachable(amqpURL string, timeout time.Duration) error {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{
		Dial:      amqp.DefaultDial(timeout),
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
	})
	if err != nil {
		return fmt.Errorf("%s", redact(err.Error()))
	}
	return conn.Close()
}

// redact returns s with the password of an AMQP URL replaced by "xxxxx". s may be
// a URL or any text; text that does not parse as a URL is returned unchanged
// except that userinfo of the form user:password@ is masked.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return redactUserinfo(s)
}

// redactUserinfo masks every "scheme://user:password@" inside free text.
func redactUserinfo(s string) string {
	out := []byte(s)
	for i := 0; i+3 <= len(out); i++ {
		if string(out[i:i+3]) != "://" {
			continue
		}
		start := i + 3
		end := start
		for end < len(out) && out[end] != '@' && out[end] != '/' && out[end] != ' ' {
			end++
		}
		if end >= len(out) || out[end] != '@' {
			continue
		}
		colon := -1
		for j := start; j < end; j++ {
			if out[j] == ':' {
				colon = j
				break
			}
		}
		if colon < 0 {
			continue
		}
		out = append(out[:colon+1], append([]byte("xxxxx"), out[end:]...)...)
		i = colon + 1 + len("xxxxx")
	}
	return string(out)
}
