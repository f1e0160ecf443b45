package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browserNames are the executables tried, in order, for headless tests.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// findBrowser returns a Chromium to drive. In CI (CI=true) a missing browser
// fails the test; elsewhere it is skipped with what to install.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const hint = "no Chromium found: apt-get install -y chromium chromium-driver"
	if os.Getenv("CI") != "" {
		t.Fatal(hint)
	}
	t.Skip(hint)
	return ""
}

// browser is one headless Chromium tab pointed at a dashboard.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string // dashboard URL, ending in "/"
	shots string // where screenshots go

	mu      sync.Mutex
	console []string // errors and exceptions the pages logged
}

// screenshotsDir is docs/screenshots when WARREN_UPDATE_SCREENSHOTS is set
// (run that way to refresh the committed pictures), else a temporary one.
func screenshotsDir(t *testing.T) string {
	if os.Getenv("WARREN_UPDATE_SCREENSHOTS") != "" {
		dir := filepath.Join("..", "docs", "screenshots")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := findBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base, shots: screenshotsDir(t)}
	messages := chromedp.Console(ctx)
	require.NoError(t, chromedp.Do(ctx), "start Chromium") // the browser lives as long as ctx
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// step bounds one browser action.
func (b *browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 30*time.Second)
}

func (b *browser) open(path string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, chromedp.Navigate(b.base+path)), "open %s", path)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)), "click %s", sel)
}

func (b *browser) setValue(sel, value string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(sel), value)), "set %s", sel)
}

// eval runs a JavaScript expression returning a string.
func (b *browser) eval(js string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	require.NoError(b.t, err, js)
	return s
}

const missing = "(no such element)"

// text returns the trimmed text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.textContent.trim() : %q })()`, q, missing))
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	var n int
	_, err := fmt.Sscan(b.eval(fmt.Sprintf(`String(document.querySelectorAll(%s).length)`, q)), &n)
	require.NoError(b.t, err)
	return n
}

// waitFor polls cond every 100 ms for up to 30 s; what describes the
// condition and its last observed value on failure.
func (b *browser) waitFor(what string, cond func() (bool, string)) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("browser: waited 30s for %s; last saw %q; page text:\n%s", what, last, b.text("main"))
}

func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.waitFor(sel+" = "+want, func() (bool, string) {
		got := b.text(sel)
		return got == want, got
	})
}

func (b *browser) waitCount(sel string, n int) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%d of %s", n, sel), func() (bool, string) {
		got := b.count(sel)
		return got == n, fmt.Sprint(got)
	})
}

// shot saves a full-page PNG screenshot as name.png and checks it decodes.
// A loaded page can still be laid out at zero size for a moment on a busy
// machine: a failed capture is tried again, for up to 10 s.
func (b *browser) shot(name string) {
	b.t.Helper()
	var img []byte
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := b.step()
		img, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(b.t, err, "screenshot %s", name)
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	require.NoError(b.t, err, "screenshot %s is a PNG", name)
	require.GreaterOrEqual(b.t, cfg.Width, 1000)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name+".png"), img, 0o644))
}

// consoleErrors returns what the pages logged as errors (CSP violations
// among them) or threw.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

func sel(testid string) string { return `[data-testid="` + testid + `"]` }

func row(testid, attr, value string) string {
	return fmt.Sprintf(`[data-testid=%q][%s=%q]`, testid, attr, value)
}
