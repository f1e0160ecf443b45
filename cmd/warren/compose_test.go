package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// composeFile is the part of compose.yaml the test checks.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

var interpolation = regexp.MustCompile(`\$\{([A-Z_]+):-([^}]*)\}`)

// interpolate expands ${VAR:-default} to its default, as compose does when
// VAR is unset.
func interpolate(s string) string { return interpolation.ReplaceAllString(s, "$2") }

// TestCompose checks what can be checked of compose.yaml without a Docker
// engine: it parses, the broker has the management image, a healthcheck and a
// named volume, every warren service waits for a healthy broker, each
// service's command is accepted by the real binary (run with --help), and
// every WARREN_* variable it sets is one a flag of that command reads.
func TestCompose(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "compose.yaml"))
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(raw, &c))

	mq, ok := c.Services["rabbitmq"]
	require.True(t, ok, "a rabbitmq service")
	require.Regexp(t, `^rabbitmq:[^ ]*management`, mq.Image)
	require.NotEmpty(t, mq.Healthcheck.Test)
	require.Len(t, mq.Volumes, 1)
	volume := strings.SplitN(mq.Volumes[0], ":", 2)[0]
	require.Contains(t, c.Volumes, volume, "the broker's data lives in a named volume")

	for _, name := range []string{"worker", "dashboard"} {
		svc, ok := c.Services[name]
		require.True(t, ok, "a %s service", name)
		require.NotNil(t, svc.Build, "%s is built from the Dockerfile", name)
		require.Equal(t, "service_healthy", svc.DependsOn["rabbitmq"].Condition, "%s waits for a healthy broker", name)
		require.Contains(t, interpolate(svc.Environment["WARREN_AMQP_URL"]), "@rabbitmq:5672/")
		require.Equal(t, name, svc.Command[0])

		args := make([]string, 0, len(svc.Command)+1)
		for _, a := range svc.Command {
			args = append(args, interpolate(a))
		}
		r := runWith(t, baseEnv(), "", append(args, "--help")...)
		require.Equal(t, 0, r.code, "compose service %s: warren %s --help: %s", name, strings.Join(args, " "), r.stderr)
		require.Contains(t, r.stdout, "Usage:")
		for env := range svc.Environment {
			if strings.HasPrefix(env, "WARREN_") {
				require.Contains(t, r.stdout, "[$"+env+"]", "compose service %s sets %s, which no flag of warren %s reads", name, env, name)
			}
		}
	}
}

// TestDockerfile checks that the image builds the stock binary with the Go
// release go.mod asks for.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	require.NoError(t, err)
	mod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	require.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	require.NotNil(t, goLine)
	require.Regexp(t, `(?m)^FROM golang:`+regexp.QuoteMeta(string(goLine[1]))+`\S* AS build$`, string(df))
	require.Contains(t, string(df), "./cmd/warren")
	require.Regexp(t, `(?m)^ENTRYPOINT \["/usr/local/bin/warren"\]$`, string(df))

	// The version stamp the Dockerfile sets is the one the binary reads.
	pkg := regexp.MustCompile(`-X (\S+)\.version=`).FindSubmatch(df)
	require.NotNil(t, pkg)
	stamped := filepath.Join(t.TempDir(), "warren")
	args := append(append([]string{"build"}, buildFlags...), "-ldflags", "-X "+string(pkg[1])+".version=v9.9.9-stamp", "-o", stamped, ".")
	out, err := exec.Command("go", args...).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command(stamped, "version").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "v9.9.9-stamp")
}
