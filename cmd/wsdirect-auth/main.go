// Command wsdirect-auth is the wsdirect auth service: it checks client
// credentials, picks a node from the serf view and answers with the node's
// URL and a signed single-use connection token (package authsvc). It also
// has two helper subcommands:
//
//	wsdirect-auth keygen -out <dir>          signing.key, signing.pub, gossip.key
//	wsdirect-auth hash-password -user alice [-o users]  reads a password on stdin, prints a users-file line or appends it to a 0600 file
//
// With -tls files or -tls acme it serves https:// (see internal/tlscert for
// the flags, shared with wsdirect-node); /readyz fails until it holds a
// valid certificate. Plain http:// on an address other than loopback needs
// -tls offload (TLS terminated in front) or -dev.
//
// SIGHUP reloads the signing key (key rotation), the users file and, with
// -tls files, the certificate; SIGTERM or SIGINT shuts down gracefully
// (HTTP drain, serf leave).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// realMain dispatches to a subcommand and returns the exit code: 0, 1 for
// a failure, 2 for a bad command line. Usage (-h, help, a bad command
// line) goes to stderr.
func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "keygen":
		err = runKeygen(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "hash-password":
		err = runHashPassword(args[1:], stdin, stdout, stderr)
	case len(args) > 0 && args[0] == "help":
		serveFlags(&options{}, stderr).Usage()
		return 0
	default:
		err = runServe(args, stderr)
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFlagParse):
		fmt.Fprintln(stderr, "wsdirect-auth:", err)
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "wsdirect-auth: %v\n(%s -h lists the flags)\n", ue.err, ue.cmd)
		return 2
	default:
		fmt.Fprintln(stderr, "wsdirect-auth:", err)
		return 1
	}
}

// errFlagParse means the flag package already printed the fault and the
// usage; the fault is repeated after it, so that the last line of a
// service's log says what is wrong.
var errFlagParse = errors.New("invalid flags")

// usageError is a bad value or combination found after parsing.
type usageError struct {
	cmd string // e.g. "wsdirect-auth keygen", whose -h lists the flags
	err error
}

func (e usageError) Error() string { return e.err.Error() }

// parseArgs parses args into fs: flag.ErrHelp for -h (usage printed),
// errFlagParse for a line the flag package rejected (fault and usage
// printed).
func parseArgs(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return err
	default:
		return fmt.Errorf("%w: %w", errFlagParse, err)
	}
}

const usage = `usage:
  wsdirect-auth [flags]                     run the auth service (flags below)
  wsdirect-auth keygen -out <dir>           write signing.key (0600), signing.pub and gossip.key
  wsdirect-auth hash-password -user <name> [-o <users-file>]
                                            read a password on stdin, print a bcrypt users-file line
                                            (or append it to the file, mode 0600)

"wsdirect-auth keygen -h" and "wsdirect-auth hash-password -h" list their flags.

flags of the auth service:
`
