package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Config configures a Broker. The zero value connects to a local RabbitMQ as
// guest; every field has the default its comment states.
type Config struct {
	// URL is the broker's address, amqp:// or amqps://, with credentials and
	// virtual host (percent-encode reserved characters in them). It is never
	// logged or put into an error with its password.
	// Default: amqp://guest:guest@localhost:5672/.
	URL string

	// TLS configures amqps:// connections. Default: nil, which verifies the
	// server against the system roots under the URL's host name.
	TLS *tls.Config

	// Logger receives connection events: lost, recovered, blocked by a
	// resource alarm. Default: slog.Default().
	Logger *slog.Logger

	// PublishChannels is the number of confirm-mode channels on the
	// publishing connection. Publishes of fewer than 256 messages go to the
	// first ready channel (RabbitMQ confirms concurrent small publishes
	// faster on one channel); larger batches are split over all of them,
	// which the broker takes in parallel. 1 to 64. Default: 4.
	PublishChannels int

	// ConnectionName prefixes the name each connection shows in RabbitMQ
	// (for example "billing publish", "billing consume emails").
	// Default: "warren".
	ConnectionName string

	// Heartbeat is the AMQP heartbeat interval; a connection that stays
	// silent for three intervals is declared dead and recovered. A heartbeat
	// parameter in the URL takes precedence. At least 1s. Default: 10s.
	Heartbeat time.Duration

	// ReconnectInterval is the pause between attempts to recover a lost
	// connection; attempts never stop until Close. Default: 1s.
	ReconnectInterval time.Duration

	// DialTimeout bounds one attempt to connect: TCP, TLS and the AMQP
	// handshake. Default: 10s.
	DialTimeout time.Duration
}

const (
	defaultURL               = "amqp://guest:guest@localhost:5672/"
	defaultPublishChannels   = 4
	defaultConnectionName    = "warren"
	defaultHeartbeat         = 10 * time.Second
	defaultReconnectInterval = time.Second
	defaultDialTimeout       = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.URL == "" {
		c.URL = defaultURL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PublishChannels == 0 {
		c.PublishChannels = defaultPublishChannels
	}
	if c.ConnectionName == "" {
		c.ConnectionName = defaultConnectionName
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = defaultHeartbeat
	}
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = defaultReconnectInterval
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = defaultDialTimeout
	}
	return c
}

// validate checks a Config that had its defaults applied.
func (c Config) validate() error {
	uri, err := amqp.ParseURI(c.URL)
	if err != nil {
		return fmt.Errorf("amqp: invalid URL %s: %s", redactURL(c.URL), redactText(err.Error(), c.URL))
	}
	if uri.Scheme != "amqp" && uri.Scheme != "amqps" {
		return fmt.Errorf("amqp: URL scheme must be amqp or amqps, not %q", uri.Scheme)
	}
	switch {
	case c.PublishChannels < 1 || c.PublishChannels > 64:
		return fmt.Errorf("amqp: PublishChannels %d: want 1 to 64", c.PublishChannels)
	case len(c.ConnectionName) > 200:
		return errors.New("amqp: ConnectionName longer than 200 bytes")
	case c.Heartbeat < time.Second:
		return fmt.Errorf("amqp: Heartbeat %v: want at least 1s", c.Heartbeat)
	case c.ReconnectInterval < 10*time.Millisecond:
		return fmt.Errorf("amqp: ReconnectInterval %v: want at least 10ms", c.ReconnectInterval)
	case c.DialTimeout < 100*time.Millisecond:
		return fmt.Errorf("amqp: DialTimeout %v: want at least 100ms", c.DialTimeout)
	}
	return nil
}

// redactURL returns raw with its password masked, or a placeholder when raw
// does not even parse (it might still hold a password).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL, not shown)"
	}
	return u.Redacted()
}

// redactText masks the password of rawURL wherever it appears in s, raw or
// percent-encoded; errors of the underlying libraries may quote the URL.
func redactText(s, rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, "xxxxx")
			s = strings.ReplaceAll(s, url.UserPassword("", pw).String()[1:], "xxxxx")
		}
		return s
	}
	// Unparsable: mask anything that looks like userinfo.
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.IndexByte(s[i+3:], '@'); j >= 0 {
			s = s[:i+3] + "xxxxx" + s[i+3+j:]
		}
	}
	return s
}

// redactedError keeps an error's identity (errors.Is, errors.As) while its
// message has the URL's password masked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// connection is an amqp.Connection with its current socket (replaced on
// every reconnect), so that closing it can be forced.
type connection struct {
	*amqp.Connection
	sock *socketRef
}

// closeTimeout bounds each phase of closing a connection (see shut).
const closeTimeout = 3 * time.Second

// shut closes c: gracefully when the broker answers within timeout, else by
// closing the socket. amqp091-go's CloseDeadline alone can wait forever: a
// connection blocked by a resource alarm is not read by the broker, which
// never sees connection.close, while its heartbeats keep pushing the read
// deadline back.
func (c *connection) shut(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		_ = c.CloseDeadline(time.Now().Add(timeout))
		close(done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	c.sock.close() // the reader fails, the library shuts down, the close returns
	timer.Reset(timeout)
	select {
	case <-done:
	case <-timer.C:
	}
}

// dial opens one connection named ConnectionName+" "+role, honouring ctx.
// recovery is nil for connections that must not recover by themselves.
func (c Config) dial(ctx context.Context, role string, recovery *amqp.Recovery) (*connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(c.ConnectionName + " " + role)
	sock := &socketRef{}
	ac := amqp.Config{
		Heartbeat:  c.Heartbeat,
		Properties: props,
		Locale:     "en_US",
		Dial:       c.dialer(sock),
		Recovery:   recovery,
	}
	if c.TLS != nil {
		ac.TLSClientConfig = c.TLS.Clone()
	}
	type result struct {
		conn *amqp.Connection
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := amqp.DialConfig(c.URL, ac)
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, &redactedError{
				msg: fmt.Sprintf("amqp: connect to %s: %s", redactURL(c.URL), redactText(r.err.Error(), c.URL)),
				err: r.err,
			}
		}
		return &connection{Connection: r.conn, sock: sock}, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("amqp: connect to %s: %w", redactURL(c.URL), ctx.Err())
	}
}

// dialer returns the TCP dialer of every connection: DialTimeout bounds the
// connect and the handshakes, and every write gets a deadline (see
// socketConn).
func (c Config) dialer(sock *socketRef) func(network, addr string) (net.Conn, error) {
	writeTimeout := max(3*c.Heartbeat, 30*time.Second)
	return func(network, addr string) (net.Conn, error) {
		conn, err := net.DialTimeout(network, addr, c.DialTimeout)
		if err != nil {
			return nil, err
		}
		// Cleared by the library once the AMQP handshake completed.
		if err := conn.SetDeadline(time.Now().Add(c.DialTimeout)); err != nil {
			conn.Close()
			return nil, err
		}
		w := &socketConn{Conn: conn, timeout: writeTimeout}
		sock.set(w)
		return w, nil
	}
}

// recoveryConfig is the library recovery every long-lived connection uses:
// retry forever at ReconnectInterval, restore channels (QoS and confirm mode)
// but no topology and no consumers: warren declares its topology itself and
// starts consumers on its own sessions (see consumerLink).
func (c Config) recoveryConfig(hooks amqp.ConnectionRecovery) *amqp.Recovery {
	return &amqp.Recovery{
		ReconnectionConfig: &amqp.ReconnectionConfig{
			MaxRetryCount: math.MaxInt32,
			RetryInterval: c.ReconnectInterval,
		},
		ConnectionRecovery:   hooks,
		TopologyRecoveryMode: amqp.TopologyRecoveryDisabled,
	}
}
