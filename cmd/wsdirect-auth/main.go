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
// Each secret flag (-signing-key, -users, -gossip-key-file,
// -admin-token-file) takes a file or an AWS Systems Manager parameter,
// ssm:///path/name, read with the instance role (package internal/secret).
// SIGHUP re-reads all of them (key rotation, new users), and with -tls
// files the certificate; one that fails keeps its previous value. SIGTERM
// or SIGINT shuts down gracefully (HTTP drain, serf leave).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/gossipcli"
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
// usage.
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
	err := gossipcli.Parse(fs, args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return err
	default:
		return errFlagParse
	}
}

const usage = `usage:
  wsdirect-auth [flags]                     run the auth service (flags below)
  wsdirect-auth keygen -out <dir>           write signing.key (0600), signing.pub and gossip.key
  wsdirect-auth hash-password -user <name> [-o <users-file>]
                                            read a password on stdin, print a bcrypt users-file line
                                            (or append it to the file, mode 0600)

"wsdirect-auth keygen -h" and "wsdirect-auth hash-password -h" list their flags.

Secrets (-signing-key, -users, -gossip-key-file, -admin-token-file) are files
or AWS Systems Manager SecureString parameters, ssm:///path/name, read with
the instance role. SIGHUP re-reads them all.

flags of the auth service:
`
