package bench

import "regexp"

var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*):([^@/\s]*)@`)

// redactText masks the password of every URL in s.
func redactText(s string) string { return userinfoRE.ReplaceAllString(s, "${1}:xxxxx@") }
