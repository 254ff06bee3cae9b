// Command wsdirect-auth is the wsdirect auth service: it checks client
// credentials, picks a node from the serf view and answers with the node's
// URL and a signed single-use connection token (package authsvc). It also
// has two helper subcommands:
//
//	wsdirect-auth keygen -out <dir>          signing.key, signing.pub, gossip.key
//	wsdirect-auth hash-password -user alice [-o users]  reads a password on stdin, prints a users-file line or appends it to a 0600 file
//
// SIGHUP reloads the signing key (key rotation) and the users file; SIGTERM
// or SIGINT shuts down gracefully (HTTP drain, serf leave).
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// realMain dispatches to a subcommand and returns the exit code.
func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "keygen":
		err = runKeygen(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "hash-password":
		err = runHashPassword(args[1:], stdin, stdout, stderr)
	case len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help"):
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		err = runServe(args, stderr)
	}
	if err == errFlagParse {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "wsdirect-auth:", err)
		return 1
	}
	return 0
}

const usage = `usage:
  wsdirect-auth [flags]                     run the auth service (wsdirect-auth -h for flags)
  wsdirect-auth keygen -out <dir>           write signing.key (0600), signing.pub and gossip.key
  wsdirect-auth hash-password -user <name> [-o <users-file>]
                                            read a password on stdin, print a bcrypt users-file line
                                            (or append it to the file, mode 0600)`
