package amqptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// startTimeout bounds a node's boot. A node boots in about 5 s alone; several
	// booting at once under -race on two cores take much longer.
	startTimeout = 2 * time.Minute
	// stopTimeout bounds a graceful stop and the exit after kill -9.
	stopTimeout = time.Minute
	// ctlTimeout bounds one rabbitmqctl call.
	ctlTimeout = 2 * time.Minute
	// dirPrefix starts the name of every node directory: dirPrefix<pid>-.
	dirPrefix = "warren-amqptest-"
)

// nodeConf is the node's own rabbitmq.conf. It replaces /etc/rabbitmq/rabbitmq.conf,
// whose listeners would collide with the shared broker's.
const nodeConf = `# Written by warren's amqptest for a throwaway test node.
log.console = false
log.file.level = info
`

// Node is a private throwaway RabbitMQ node (own node name, ports and data
// directory) for tests that break the broker: kill it, restart it, raise alarms.
// Its methods are meant for the test goroutine that started it.
type Node struct {
	name     string // erlang node name, warren-<pid>-<n>@localhost
	dir      string
	cookie   string
	amqpPort int
	distPort int

	mu      sync.Mutex
	proc    *os.Process   // the Erlang VM, nil when not running
	exited  chan struct{} // closed when proc has exited
	waitErr error         // proc's exit status, valid once exited is closed
}

var nodeSeq atomic.Int64

// StartNode starts a private RabbitMQ node on free loopback ports and waits until
// it accepts AMQP connections and reports startup complete (rabbitmqctl
// await_startup). t.Cleanup kills the node and removes its directory. The test
// fails when rabbitmq-server is not installed.
func StartNode(t testing.TB) *Node {
	t.Helper()
	if _, err := serverScript(); err != nil {
		t.Fatalf("amqptest: StartNode needs rabbitmq-server (%v): run `apt-get install -y rabbitmq-server`", err)
	}
	n, err := newNode()
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	t.Cleanup(n.destroy)
	began := time.Now()
	if err := n.start(); err != nil {
		t.Fatalf("amqptest: start node %s: %v", n.name, err)
	}
	t.Logf("amqptest: node %s up on 127.0.0.1:%d in %s", n.name, n.amqpPort, time.Since(began).Round(time.Millisecond))
	return n
}

// URL returns the node's AMQP URL (user guest, password guest, vhost /).
func (n *Node) URL() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.amqpPort)
}

// Addr returns the node's AMQP listener, host:port.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.amqpPort)) }

// Name returns the node's Erlang name, as rabbitmqctl -n wants it.
func (n *Node) Name() string { return n.name }

// Dir returns the node's directory (data in mnesia/, logs in log/).
func (n *Node) Dir() string { return n.dir }

// Kill kills the broker with SIGKILL, like a crash or an OOM kill, and waits
// until the process is gone. Data on disk stays; [Node.Start] boots it again.
//
// One thing a real crash could lose, Kill keeps: right before the kill it syncs
// the node's DETS tables. RabbitMQ 3.10 (ra 2.2) records a new quorum queue's Raft
// server in a DETS table saved every 500 ms, so a node killed within about a
// second of declaring a quorum queue brings the queue back empty, messages and
// all (verified here). Tests are about warren, not that window.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n.ctl(ctx, "eval", "lists:foreach(fun dets:sync/1, dets:all()).") // best effort: a hung node is killed anyway
	cancel()
	if err := n.kill(); err != nil {
		t.Fatalf("amqptest: kill node %s: %v", n.name, err)
	}
}

// Start starts the node again on the same data directory and ports, and waits
// for it as [StartNode] does.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	began := time.Now()
	if err := n.start(); err != nil {
		t.Fatalf("amqptest: start node %s: %v", n.name, err)
	}
	t.Logf("amqptest: node %s up again in %s", n.name, time.Since(began).Round(time.Millisecond))
}

// Stop stops the node gracefully (rabbitmqctl stop) and waits until the
// process has exited.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	if err := n.stop(); err != nil {
		t.Fatalf("amqptest: stop node %s: %v", n.name, err)
	}
}

// Ctl runs rabbitmqctl against the node (rabbitmqctl -n NAME args...) and
// returns its output. The test fails when rabbitmqctl fails.
func (n *Node) Ctl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	out, err := n.ctl(ctx, args...)
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	return out
}

// SetMemoryAlarm raises (on) or clears the node's memory alarm by setting the
// memory high watermark far below the node's use (0.0000001 of RAM) or back to
// the default 0.4, and waits until the alarm is in that state. While it is on,
// RabbitMQ blocks every connection that publishes and sends connection.blocked.
func (n *Node) SetMemoryAlarm(t testing.TB, on bool) {
	t.Helper()
	watermark := "0.4"
	if on {
		watermark = "0.0000001"
	}
	n.Ctl(t, "set_vm_memory_high_watermark", watermark)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := n.Ctl(t, "eval", "rabbit_alarm:get_alarms().")
		if strings.Contains(out, "memory") == on {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("amqptest: node %s: memory alarm still %v after 30s: %s", n.name, !on, oneLine(out))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newNode prepares a node's directory, name, ports and cookie; it starts nothing.
func newNode() (*Node, error) {
	sweepOnce.Do(sweepStaleDirs)
	pid := os.Getpid()
	dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(pid)+"-")
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"enabled_plugins":   "[].\n",
		"rabbitmq.conf":     nodeConf,
		"rabbitmq-env.conf": "# Empty: keeps /etc/rabbitmq/rabbitmq-env.conf out of this node.\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	cookie := make([]byte, 16)
	if _, err := rand.Read(cookie); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := &Node{
		name:   fmt.Sprintf("warren-%d-%d@localhost", pid, nodeSeq.Add(1)),
		dir:    dir,
		cookie: strings.ToUpper(hex.EncodeToString(cookie)),
	}
	if err := n.pickPorts(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return n, nil
}

// pickPorts chooses two free loopback ports for AMQP and distribution.
func (n *Node) pickPorts() error {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("pick a free port: %w", err)
		}
		defer l.Close() // keep both open until both are chosen, so they differ
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	n.amqpPort, n.distPort = ports[0], ports[1]
	return nil
}

// start boots the node and waits for it. A first boot that dies early (most
// likely a port taken between pickPorts and the boot) is retried on new ports.
func (n *Node) start() error {
	n.mu.Lock()
	running := n.proc != nil
	n.mu.Unlock()
	if running {
		return errors.New("already running")
	}
	firstBoot := !exists(filepath.Join(n.dir, "mnesia"))
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = n.boot(); err == nil {
			return nil
		}
		var early *earlyExitError
		if !firstBoot || !errors.As(err, &early) {
			return err
		}
		os.RemoveAll(filepath.Join(n.dir, "mnesia"))
		os.RemoveAll(filepath.Join(n.dir, "log"))
		if perr := n.pickPorts(); perr != nil {
			return errors.Join(err, perr)
		}
	}
	return err
}

// earlyExitError reports a node that exited while booting.
type earlyExitError struct{ msg string }

func (e *earlyExitError) Error() string { return e.msg }

// boot spawns the Erlang VM and waits until the node has started.
func (n *Node) boot() error {
	script, err := serverScript()
	if err != nil {
		return err
	}
	console, err := os.OpenFile(filepath.Join(n.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(script)
	cmd.Dir = n.dir
	cmd.Env = n.serverEnv()
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		console.Close()
		return err
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.proc, n.exited = cmd.Process, exited
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		console.Close()
		n.mu.Lock()
		n.waitErr = err
		if n.proc == cmd.Process {
			n.proc = nil
		}
		n.mu.Unlock()
		close(exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return &earlyExitError{fmt.Sprintf("node exited while booting (%v); %s", n.exitErr(), n.logTail())}
		default:
		}
		c, err := net.DialTimeout("tcp", n.Addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			n.kill()
			return fmt.Errorf("no AMQP listener on %s after %s; %s", n.Addr(), startTimeout, n.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	if _, err := n.ctl(ctx, "await_startup", "--timeout", strconv.Itoa(int(startTimeout/time.Second))); err != nil {
		n.kill()
		return fmt.Errorf("%v; %s", err, n.logTail())
	}
	return nil
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waitErr == nil {
		return errors.New("exit status 0")
	}
	return n.waitErr
}

// kill sends SIGKILL to the VM (and to the pid in the pid file, should the
// installed scripts not have exec'ed into the VM) and waits for the exit.
func (n *Node) kill() error {
	n.mu.Lock()
	proc, exited := n.proc, n.exited
	n.mu.Unlock()
	if proc == nil {
		return errors.New("not running")
	}
	if pid := n.pidFromFile(); pid > 0 && pid != proc.Pid {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
	if err := proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("pid %d still alive %s after SIGKILL", proc.Pid, stopTimeout)
	}
}

// stop stops the node with rabbitmqctl stop and waits for the VM to exit.
func (n *Node) stop() error {
	n.mu.Lock()
	proc, exited := n.proc, n.exited
	n.mu.Unlock()
	if proc == nil {
		return errors.New("not running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if _, err := n.ctl(ctx, "stop"); err != nil {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pid %d still alive %s after rabbitmqctl stop", proc.Pid, stopTimeout)
	}
}

// destroy kills the node if it runs and removes its directory.
func (n *Node) destroy() {
	n.kill()
	os.RemoveAll(n.dir)
}

// ctl runs rabbitmqctl against the node.
func (n *Node) ctl(ctx context.Context, args ...string) (string, error) {
	script, err := ctlScript()
	if err != nil {
		return "", err
	}
	full := append([]string{"-n", n.name, "--erlang-cookie", n.cookie}, args...)
	cmd := exec.CommandContext(ctx, script, full...)
	cmd.Dir = n.dir
	cmd.Env = n.ctlEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl -n %s %s: %v: %s", n.name, strings.Join(args, " "), err, oneLine(string(out)))
	}
	return string(out), nil
}

// serverEnv is the environment of the node's VM: the test's own, minus any
// RabbitMQ or Erlang settings meant for another node, plus this node's.
func (n *Node) serverEnv() []string {
	return append(baseEnv(),
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(n.dir, "pid"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(n.dir, "rabbitmq-env.conf"),
		// Exec straight into the VM (so our child is the broker, and kill -9 hits
		// it), without an Erlang shell on stdin.
		"RABBITMQ_ALLOW_INPUT=1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-noinput -setcookie "+n.cookie+
			" -kernel inet_dist_use_interface {127,0,0,1}",
		// Should this node be the one to start epmd, keep it on loopback.
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

// ctlEnv is the environment of rabbitmqctl.
func (n *Node) ctlEnv() []string {
	return append(baseEnv(),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(n.dir, "rabbitmq-env.conf"),
		// The CLI's own distribution port; the default range of 11 ports runs out
		// when many tests run rabbitmqctl at once.
		"RABBITMQ_CTL_DIST_PORT_MIN=35672",
		"RABBITMQ_CTL_DIST_PORT_MAX=35872",
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RABBITMQ_") || strings.HasPrefix(kv, "ERL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (n *Node) pidFromFile() int {
	b, err := os.ReadFile(filepath.Join(n.dir, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// logTail returns the end of the node's log and console output, for failures.
func (n *Node) logTail() string {
	var parts []string
	for _, f := range []string{
		filepath.Join(n.dir, "log", strings.TrimSuffix(n.name, "@localhost")+"@localhost.log"),
		filepath.Join(n.dir, "console.log"),
	} {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		parts = append(parts, f+":\n"+strings.Join(lines, "\n"))
	}
	if len(parts) == 0 {
		return "no log in " + n.dir
	}
	return strings.Join(parts, "\n")
}

// script finds an installed RabbitMQ script: the real one in /usr/lib/rabbitmq/bin
// (Debian, Ubuntu, RPM; /usr/sbin holds a wrapper that switches to the rabbitmq
// user), else the one on $PATH (generic unix package, Homebrew).
func script(name string) (string, error) {
	p := filepath.Join("/usr/lib/rabbitmq/bin", name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	return exec.LookPath(name)
}

func serverScript() (string, error) { return script("rabbitmq-server") }
func ctlScript() (string, error)    { return script("rabbitmqctl") }

var sweepOnce sync.Once

// sweepStaleDirs removes the node directories of test processes that are gone
// (a test binary killed by -timeout cannot run its cleanups).
func sweepStaleDirs() {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), dirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// oneLine squeezes s onto one line of bounded length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
