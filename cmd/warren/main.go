// Command warren is the stock warren binary: the worker daemon and the
// operations CLI of package cmd/cli, with the demo job kinds of package
// cmd/warren/demo registered. Run `warren --help`; docs/cli.md documents every
// command.
package main

import (
	"context"
	"os"

	"github.com/warrenjobs/warren/cmd/cli"
	"github.com/warrenjobs/warren/cmd/warren/demo"
	"github.com/warrenjobs/warren/jobs"
)

func main() {
	workers := jobs.NewWorkers()
	demo.Register(workers)
	os.Exit(cli.ExecuteWith(context.Background(), workers, &cli.Options{DevProducer: demo.Produce}))
}
