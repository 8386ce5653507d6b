package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// envPrefix names the environment variables: every flag --some-name of
// the commands parsed with parseFlags (all but client add) may also be
// given as UCPBRIDGE_SOME_NAME. A flag on the command line wins over the
// environment; the environment wins over the default.
const envPrefix = "UCPBRIDGE_"

// envHelp closes every command's --help.
const envHelp = `
Every flag may also be set in the environment as UCPBRIDGE_<FLAG>, upper
case with "-" as "_" (--data-dir is UCPBRIDGE_DATA_DIR, --api-key is
UCPBRIDGE_API_KEY); a flag on the command line wins over the environment.
`

// envName is the variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseFlags parses args, then fills each flag not given on the command
// line from its environment variable (lookup is os.LookupEnv outside
// tests). A malformed value names its variable.
func parseFlags(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
		}
	})
	return errors.Join(errs...)
}

// usageWith makes fs's --help a summary, the flags, then the environment
// rule.
func usageWith(fs *flag.FlagSet, w io.Writer, summary string) {
	fs.Usage = func() {
		fmt.Fprint(w, summary)
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
		fmt.Fprint(w, envHelp)
	}
}

// logFlags are --log-format and --log-level.
type logFlags struct {
	format, level *string
}

func addLogFlags(fs *flag.FlagSet, format string) logFlags {
	return logFlags{
		format: fs.String("log-format", format, "log format: text or json"),
		level:  fs.String("log-level", "info", "least severe level logged: debug, info, warn or error (info logs one line per request)"),
	}
}

// logger builds the process's logger on w (stderr: stdout carries the
// banner, and a stdio bridge's protocol).
func (f logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*f.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", *f.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *f.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", *f.format)
}
