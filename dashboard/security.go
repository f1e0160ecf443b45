package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// authenticate requires the configured basic-auth credentials. Both the user
// name and the password are compared in constant time (over their SHA-256
// digests, so their lengths do not leak either).
func (d *Dashboard) authenticate(next http.Handler) http.Handler {
	if d.cfg.BasicAuth == nil {
		return next
	}
	wantUser := sha256.Sum256([]byte(d.cfg.BasicAuth.User))
	wantPass := sha256.Sum256([]byte(d.cfg.BasicAuth.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(user))
		gotPass := sha256.Sum256([]byte(pass))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="warren dashboard", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows the dashboard's own scripts and styles only:
// no inline script, no eval (htmx runs with allowEval off), no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setSecurityHeaders marks every response private and live (assets override
// Cache-Control with their immutable one) and locks the page down.
func setSecurityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// ParseBasicAuth reads "user:password" (the password may contain colons).
func ParseBasicAuth(s string) (*BasicAuth, error) {
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || pass == "" {
		return nil, errors.New(`basic auth must be "user:password", both non-empty`)
	}
	return &BasicAuth{User: user, Password: pass}, nil
}

// ErrInsecureListen reports an attempt to serve the dashboard beyond the
// loopback interface without authentication.
var ErrInsecureListen = errors.New("refusing to serve the dashboard without authentication on a non-loopback address")

// CheckListenAddr refuses a listen address that is reachable from other
// machines (anything but a loopback IP or "localhost") when the dashboard
// has no authentication, unless insecure is set. An empty host (":5555")
// listens on every interface and so counts as reachable.
func CheckListenAddr(addr string, hasAuth, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if hasAuth || insecure || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("%w (%s): set basic auth, listen on 127.0.0.1, or pass --insecure-no-auth", ErrInsecureListen, addr)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
