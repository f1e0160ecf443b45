package redact

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"amqp://guest:guest@localhost:5672/":        "amqp://guest:xxxxx@localhost:5672/",
		"dial amqps://u:p%40ss@h:5671/vh: refused":  "dial amqps://u:xxxxx@h:5671/vh: refused",
		"two: amqp://a:1@x/ and amqp://b:2@y/":      "two: amqp://a:xxxxx@x/ and amqp://b:xxxxx@y/",
		"no password: amqp://user@host/":            "no password: amqp://user@host/",
		"not a url at all":                          "not a url at all",
		`quoted "amqp://u:secret@host:bad/" inside`: `quoted "amqp://u:xxxxx@host:bad/" inside`,
		"amqp://:onlypass@host/":                    "amqp://:xxxxx@host/",
	} {
		require.Equal(t, want, Text(in), in)
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "amqp://guest:xxxxx@localhost:5672/", URL("amqp://guest:guest@localhost:5672/"))
	require.Equal(t, "amqp://user@host/", URL("amqp://user@host/"))
	require.Equal(t, "amqp://u:xxxxx@host:x/", URL("amqp://u:pw@host:x/"), "unparsable URLs are masked too")
}
