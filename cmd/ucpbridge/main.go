// Command ucpbridge runs the ucpbridge platform. `ucpbridge dev` starts it
// locally on an embedded SQLite store with seeded demo fixtures.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ucpbridge:", err)
		os.Exit(1)
	}
}

const usage = `usage: ucpbridge <command> [flags]

commands:
  dev    run the whole stack locally: the platform, the demo stores and the
         MCP bridge (SQLite, demo fixtures, loopback CIMD and platform
         profiles allowed, unreachable profiles tolerated)
  serve  run the platform for real (https issuer, spec profile rules)
  bridge run the MCP bridge (stdio or HTTP) pointing at a platform
  client register a platform application, a merchant's app or a buyer-facing
         app ("ucpbridge client add -h")
  keys   generate an ES256 signing key (JWK or PEM) and print its JWKS
  migrate
         bring a database's schema up to date and print its version
  sweep  delete expired OAuth tokens, codes and ended families once (cron)

Run "ucpbridge <command> -h" for its flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "client":
		return runClient(ctx, args[1:], stdout, stderr)
	case "bridge":
		return runBridge(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "sweep":
		return runSweep(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
