// Command certdesk is the certdesk portal and its operator tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: certdesk <command> [flags]

commands:
  serve --config FILE                 run the portal
  migrate --config FILE               apply database migrations
  ca init --config FILE [--external-root]
                                      create the CA keys in the token and the CA certificates
  ca import --config FILE --cert FILE --root FILE
                                      install an issuing CA certificate signed by an offline root
  token create --config FILE --subject NAME --role ROLE [--org SLUG] [--ttl DURATION]
                                      mint an API token and print it
  audit verify --config FILE          verify the audit hash chain
  demo [--data DIR] [--addr HOST:PORT]
                                      run everything on one machine for a demo
`

// errUsage is a command-line mistake; main prints the usage and exits 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "certdesk:", err)
		os.Exit(1)
	}
}

// run dispatches a command line; it is main without the exits, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	if (cmd == "ca" || cmd == "token" || cmd == "audit") && len(rest) > 0 {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	c, ok := commands[cmd]
	if !ok {
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	return c(ctx, rest, stdout, stderr)
}

type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseWithConfig parses flags including a required --config and loads it.
func parseWithConfig(fs *flag.FlagSet, args []string) (*Config, error) {
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if *path == "" {
		return nil, fmt.Errorf("%w: --config is required", errUsage)
	}
	return loadConfig(*path)
}
