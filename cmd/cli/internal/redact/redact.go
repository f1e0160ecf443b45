// Package redact masks the passwords of URLs — AMQP URLs carry them — in any
// text the command prints: logs, errors, help. The mask is "xxxxx".
package redact

import (
	"net/url"
	"regexp"
)

// Mask replaces a password.
const Mask = "xxxxx"

// userinfoRE finds the password in "scheme://user:password@" inside any text.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*):([^@/\s]*)@`)

// Text masks the password of every URL in s.
func Text(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}:"+Mask+"@")
}

// URL masks the password of raw, which may not even parse.
func URL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
		return u.String()
	}
	return Text(raw)
}
