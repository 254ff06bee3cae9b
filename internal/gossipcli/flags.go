// Package gossipcli is the gossip side of the wsdirect-node and
// wsdirect-auth commands, so both set it up the same way: the gossip and
// logging flags (Flags), the JSON logger (NewLogger), the cluster.Config
// those flags make (Flags.ClusterConfig) and the join policy (Join):
// explicit -join addresses and -join-ec2-tag discovery, retried with
// capped, jittered backoff in the background until a member answers.
package gossipcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/discover"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
)

// Flags are the gossip and logging flags both commands take.
type Flags struct {
	Bind        string     // -gossip-bind, host[:port]
	Advertise   string     // -gossip-advertise, host[:port]; "" = derived from Bind
	KeyFile     string     // -gossip-key-file
	Dev         bool       // -dev
	Join        []string   // -join, repeatable and comma lists
	JoinEC2Tag  string     // -join-ec2-tag, Key=Value
	EC2Endpoint string     // -ec2-endpoint
	LogLevel    slog.Level // -log-level
}

// Register defines the flags on fs, with the same names, defaults and help
// in both commands.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Bind, "gossip-bind", fmt.Sprintf("0.0.0.0:%d", DefaultPort), "serf gossip listen address (UDP and TCP), host[:port]")
	fs.StringVar(&f.Advertise, "gossip-advertise", "", "gossip address other members reach this one at, host[:port] (default: derived from -gossip-bind; the port defaults to the bound one)")
	fs.StringVar(&f.KeyFile, "gossip-key-file", "", "`file or ssm:///parameter` with the base64 32-byte gossip encryption key (from wsdirect-auth keygen; several keys, the first in use, while rotating); required unless -dev")
	fs.BoolVar(&f.Dev, "dev", false, "developer mode: allow unencrypted gossip (never outside a developer machine)")
	fs.Var((*ListFlag)(&f.Join), "join", "gossip `address` of a member to join, host[:port] (repeatable or comma list; the port defaults to this member's gossip port); retried with backoff until one answers")
	fs.StringVar(&f.JoinEC2Tag, "join-ec2-tag", "", "also join the private IPs of the running EC2 instances with this tag, Key=Value (DescribeInstances, on this member's gossip port); retried with backoff")
	fs.StringVar(&f.EC2Endpoint, "ec2-endpoint", "", "EC2 API endpoint override for -join-ec2-tag (VPC endpoints, tests)")
	fs.TextVar(&f.LogLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
}

// Validate checks the flags' syntax and combinations, naming the flag at
// fault. It reads no file and calls no service.
func (f *Flags) Validate() error {
	if !f.Dev && f.KeyFile == "" {
		return errors.New("-gossip-key-file is required (or -dev for unencrypted gossip on a developer machine)")
	}
	if err := secret.CheckRef("-gossip-key-file", f.KeyFile); err != nil {
		return err
	}
	if _, _, err := SplitHostPort(f.Bind, DefaultPort); err != nil {
		return fmt.Errorf("-gossip-bind: %w", err)
	}
	if f.Advertise != "" {
		h, _, err := SplitHostPort(f.Advertise, 0)
		if err != nil {
			return fmt.Errorf("-gossip-advertise: %w", err)
		}
		if h == "" {
			return fmt.Errorf("-gossip-advertise %q: no host", f.Advertise)
		}
	}
	for _, a := range f.Join {
		if _, err := JoinAddr(a, DefaultPort); err != nil {
			return fmt.Errorf("-join: %w", err)
		}
	}
	if f.JoinEC2Tag != "" {
		if _, _, err := discover.ParseTag(f.JoinEC2Tag); err != nil {
			return fmt.Errorf("-join-ec2-tag: %w", err)
		}
	}
	return nil
}

// NewLogger is both commands' logger: JSON lines on w at level.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Logger returns NewLogger(w, f.LogLevel).
func (f *Flags) Logger(w io.Writer) *slog.Logger { return NewLogger(w, f.LogLevel) }

// ClusterConfig returns cluster.DefaultConfig with the member's name, role
// and logger and what the flags say: gossip bind and advertise addresses,
// the gossip key (read from -gossip-key-file) and Dev. The caller adds its
// role's fields (a node's PublicAddr, WSPort, Cap, Zone). Call Validate
// first.
func (f *Flags) ClusterConfig(name string, role cluster.Role, log *slog.Logger) (*cluster.Config, error) {
	c := cluster.DefaultConfig()
	c.Name, c.Role, c.Dev, c.Logger = name, role, f.Dev, log
	var err error
	if c.BindAddr, c.BindPort, err = SplitHostPort(f.Bind, DefaultPort); err != nil {
		return nil, fmt.Errorf("-gossip-bind: %w", err)
	}
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0" // ":7946" listens on every interface, as net.Listen does
	}
	if f.Advertise != "" {
		// Port 0: advertise the bound port.
		if c.AdvertiseAddr, c.AdvertisePort, err = SplitHostPort(f.Advertise, 0); err != nil {
			return nil, fmt.Errorf("-gossip-advertise: %w", err)
		}
	}
	if f.KeyFile != "" {
		keys, err := f.readKeys()
		if err != nil {
			return nil, err
		}
		c.SecretKey = keys[0]
		if len(keys) > 1 {
			c.ExtraKeys = keys[1:]
		}
	}
	return c, nil
}

// readKeys reads and decodes -gossip-key-file: one or more keys, the first
// the one to send with (cluster.DecodeKeys).
func (f *Flags) readKeys() ([][]byte, error) {
	s, err := secret.Read("-gossip-key-file", f.KeyFile)
	if err != nil {
		return nil, err
	}
	keys, err := cluster.DecodeKeys(s)
	if err != nil {
		return nil, fmt.Errorf("-gossip-key-file %s: %w", f.KeyFile, err)
	}
	return keys, nil
}

// ReloadKeys re-reads -gossip-key-file and makes cl's keyring hold exactly
// its keys (SIGHUP; cluster.SetKeys describes a rotation). On any error the
// keyring stays as it was. It returns how many keys are in use; without
// -gossip-key-file (-dev) there is nothing to reload and it returns 0.
func (f *Flags) ReloadKeys(cl *cluster.Cluster) (int, error) {
	if f.KeyFile == "" {
		return 0, nil
	}
	keys, err := f.readKeys()
	if err != nil {
		return 0, err
	}
	if err := cl.SetKeys(keys); err != nil {
		return 0, fmt.Errorf("-gossip-key-file %s: %w", f.KeyFile, err)
	}
	return len(keys), nil
}

// JoinConfig returns DefaultJoinConfig with the -join addresses and, for
// -join-ec2-tag, an EC2 lookup. The EC2 client is made here, so a missing
// region or a malformed -ec2-endpoint fails at start-up rather than on
// every attempt. Call Validate first.
func (f *Flags) JoinConfig(ctx context.Context, log *slog.Logger) (*JoinConfig, error) {
	jc := DefaultJoinConfig()
	jc.Addrs = append([]string(nil), f.Join...)
	jc.Logger = log
	if f.JoinEC2Tag != "" {
		key, value, err := discover.ParseTag(f.JoinEC2Tag)
		if err != nil {
			return nil, fmt.Errorf("-join-ec2-tag: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		client, err := discover.NewEC2Client(cctx, f.EC2Endpoint)
		if err != nil {
			return nil, fmt.Errorf("-join-ec2-tag: %w", err)
		}
		jc.Lookup = func(ctx context.Context) ([]string, error) {
			ips, err := discover.EC2Tag(ctx, client, key, value)
			if err == nil {
				log.Debug("EC2 tag lookup", "tag", f.JoinEC2Tag, "instances", len(ips))
			}
			return ips, err
		}
		jc.LookupName = "-join-ec2-tag " + f.JoinEC2Tag
	}
	return jc, nil
}

// ListFlag is a repeatable string flag whose values may also be comma
// lists: "-join a -join b" and "-join a,b" give the same list.
type ListFlag []string

func (l *ListFlag) String() string { return strings.Join(*l, ",") }

func (l *ListFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// Parse parses args into fs, the way both daemons want it: -h prints fs's
// whole usage and returns flag.ErrHelp; a flag the package rejects prints
// only its one-line complaint and a pointer to -h. The full usage is not
// repeated there because a daemon's log (journald, a console tail) keeps the
// last lines, and a long flag list would push the complaint out of sight.
func Parse(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if usage != nil {
			usage()
		} else {
			fmt.Fprintf(fs.Output(), "usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
		return err
	}
	fmt.Fprintf(fs.Output(), "(%s -h lists the flags)\n", fs.Name())
	return err
}
