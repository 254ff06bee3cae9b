package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// Files written by keygen.
const (
	signingKeyFile = "signing.key"
	signingPubFile = "signing.pub"
	gossipKeyFile  = "gossip.key"
)

// runKeygen writes a fresh Ed25519 signing pair and a gossip key into -out,
// refusing to overwrite existing files.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsdirect-auth keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: wsdirect-auth keygen -out <dir>

Writes a fresh Ed25519 token signing pair (signing.key, 0600, for auth;
signing.pub for every node's -auth-keys) and a gossip key (gossip.key,
0600, for every member's -gossip-key-file). Existing files are never
overwritten.

flags:
`)
		fs.PrintDefaults()
	}
	out := fs.String("out", "", "directory to write signing.key (0600), signing.pub and gossip.key into (created if missing); required")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fs.Name(), fmt.Errorf("keygen: unexpected arguments %q", fs.Args())}
	case *out == "":
		return usageError{fs.Name(), errors.New("keygen: -out is required")}
	}
	paths := []string{filepath.Join(*out, signingKeyFile), filepath.Join(*out, signingPubFile), filepath.Join(*out, gossipKeyFile)}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("keygen: %s already exists; refusing to overwrite (move it away first)", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	_, statErr := os.Stat(*out)
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// Created here: 0700 whatever the umask (a directory left 0500
		// could not take the files).
		if err := os.Chmod(*out, 0o700); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	_, priv, err := token.GenerateKey()
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := token.WriteKeyPair(paths[0], paths[1], priv); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	gk := make([]byte, cluster.KeySize)
	if _, err := rand.Read(gk); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	f, err := os.OpenFile(paths[2], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	// The umask can only take bits away from 0600, leaving a mode such as
	// 0400; set it outright.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := fmt.Fprintln(f, cluster.EncodeKey(gk)); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (keep secret, auth only), %s (kid %s, copy to every node's -auth-keys) and %s (every member's -gossip-key-file)\n",
		paths[0], paths[1], token.KeyID(priv.Public().(ed25519.PublicKey)), paths[2])
	return nil
}

// runHashPassword reads one password line from stdin and prints a
// users-file line for -user, or appends it to the -o file.
func runHashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsdirect-auth hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: echo -n <password> | wsdirect-auth hash-password -user <name> [-cost 10] [-o users-file]

Reads a password (the first line of stdin) and prints a users-file line
for -users: <name>:<bcrypt hash>. With -o, appends the line to that file
instead (created if needed, and kept at mode 0600).

flags:
`)
		fs.PrintDefaults()
	}
	user := fs.String("user", "", "user name; required")
	cost := fs.Int("cost", 10, "bcrypt cost (4..31); each step doubles the work")
	outPath := fs.String("o", "", "append the line to this users file (created, and kept, mode 0600) instead of printing it")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fs.Name(), fmt.Errorf("hash-password: unexpected arguments %q", fs.Args())}
	case *user == "":
		return usageError{fs.Name(), errors.New("hash-password: -user is required")}
	}
	// The first line is the password, so `echo pw |` and `echo -n pw |`
	// both work; a password cannot contain a newline.
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hash-password: read stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	out, err := authsvc.HashPassword(*user, password, *cost)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	if *outPath == "" {
		_, err = fmt.Fprintln(stdout, out)
		return err
	}
	if err := appendUser(*outPath, *user, out); err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	fmt.Fprintf(stderr, "added %s to %s (mode 0600)\n", *user, *outPath)
	return nil
}

// appendUser adds a users-file line to path, creating the file. The file
// ends up mode 0600 whatever the umask and whatever mode it had: it holds
// password hashes, which a shell redirect would leave world-readable under
// the usual umask 022. A file that does not parse, or already lists the
// user, is left alone.
func appendUser(path, user, line string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	old, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	users, _, err := authsvc.ParseUsers(old)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, dup := users[user]; dup {
		return fmt.Errorf("%s already lists %q; remove that line first to change the password", path, user)
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := io.WriteString(f, line+"\n"); err != nil {
		return err
	}
	return f.Close()
}
