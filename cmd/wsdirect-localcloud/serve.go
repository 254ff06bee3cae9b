package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
)

var errUsage = errors.New("usage")

// defaultWorkDir is .localcloud in the current directory.
const defaultWorkDir = ".localcloud"

func workDirFlag(fs *flag.FlagSet) *string {
	return fs.String("work-dir", defaultWorkDir, "directory that holds everything the local cloud writes (instances' files and console logs, the release, localcloud.json)")
}

func serve(args []string, stdout, stderr io.Writer) error {
	d := localcloud.DefaultConfig()
	fs := flag.NewFlagSet("wsdirect-localcloud serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	work := workDirFlag(fs)
	fs.StringVar(&d.Listen, "listen", d.Listen, "loopback address of the endpoint: AWS APIs, /releases/ and the control API /localcloud/v1/")
	fs.StringVar(&d.Region, "region", d.Region, "region of the emulated account")
	vpc := fs.String("vpc-cidr", d.VPCCIDR.String(), "the VPC, inside 127.0.0.0/8: instances' private addresses")
	public := fs.String("public-cidr", d.PublicCIDR.String(), "inside 127.0.0.0/8: public and Elastic IPs, each forwarding to its private address (1:1 NAT)")
	fs.IntVar(&d.ElasticIPLimit, "eip-limit", d.ElasticIPLimit, "Elastic IP quota (AWS's default is 5); 0 = no limit")
	fs.DurationVar(&d.BootDelay, "boot-delay", d.BootDelay, "how long an instance stays pending")
	fs.DurationVar(&d.MaxStopTimeout, "max-stop-timeout", d.MaxStopTimeout, "the longest a stop or terminate waits after SIGTERM before SIGKILL (caps each unit's TimeoutStopSec)")
	releaseDir := fs.String("release-bin-dir", "", "publish wsdirect-node and wsdirect-auth from this directory as a release, under goreleaser's archive names")
	fs.StringVar(&d.ReleaseVersion, "release-version", d.ReleaseVersion, "version in the published archive names")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	rolePolicies := map[string]string{}
	fs.Func("role-policy", "`profile=file`: the IAM policy document (JSON) of an instance profile's role, which the local Parameter Store enforces (repeatable; e.g. modules/cluster's node_iam_policy_json); a profile without one may do everything", func(v string) error {
		profile, file, ok := strings.Cut(v, "=")
		if !ok || profile == "" || file == "" {
			return errors.New("want profile=file")
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		rolePolicies[profile] = string(raw)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	d.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if len(rolePolicies) > 0 {
		d.RolePolicies = rolePolicies
	}
	var err error
	if d.WorkDir, err = filepath.Abs(*work); err != nil {
		return err
	}
	if d.VPCCIDR, err = netip.ParsePrefix(*vpc); err != nil {
		return fmt.Errorf("-vpc-cidr: %w", err)
	}
	if d.PublicCIDR, err = netip.ParsePrefix(*public); err != nil {
		return fmt.Errorf("-public-cidr: %w", err)
	}
	if *releaseDir != "" {
		dir, err := filepath.Abs(*releaseDir)
		if err != nil {
			return err
		}
		d.ReleaseBinaries = map[string]string{}
		for _, b := range []string{"wsdirect-node", "wsdirect-auth"} {
			d.ReleaseBinaries[b] = filepath.Join(dir, b)
		}
	}

	c, err := localcloud.New(d)
	if err != nil {
		return err
	}
	printBanner(stdout, c.Info())

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	fmt.Fprintln(stdout, "stopping every instance (SIGTERM, then SIGKILL after the grace period; a second signal cuts it short)")
	ctx, cancel := context.WithTimeout(context.Background(), d.MaxStopTimeout+10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return c.Close(ctx)
}

func printBanner(w io.Writer, info localcloud.Info) {
	fmt.Fprintf(w, "wsdirect local cloud on %s (region %s), work directory %s\n\n", info.URL, info.Region, info.WorkDir)
	fmt.Fprintf(w, "Point Terraform (or any AWS SDK) at it:\n\n")
	for _, kv := range info.Env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(w, "  export %s=%s\n", k, shellQuote(v))
	}
	fmt.Fprintf(w, "\n(or: eval \"$(wsdirect-localcloud env -work-dir %s)\")\n\n", shellQuote(info.WorkDir))
	fmt.Fprintf(w, "VPC %s; subnets:\n", info.VPC)
	for _, s := range info.Subnets {
		fmt.Fprintf(w, "  %-26s %-16s %s\n", s.ID, s.CIDR, s.AvailabilityZone)
	}
	fmt.Fprintf(w, "security groups: %s; any ami-* image exists\n", strings.Join(info.SecurityGroups, ", "))
	if info.ReleaseURL != "" {
		fmt.Fprintf(w, "\nrelease_url     = %q\nrelease_version = %q\nrelease_sha256  = {\n", info.ReleaseURL, info.ReleaseVersion)
		keys := make([]string, 0, len(info.ReleaseSHA256))
		for k := range info.ReleaseSHA256 {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %q = %q\n", k, info.ReleaseSHA256[k])
		}
		fmt.Fprintln(w, "}")
	}
	fmt.Fprintf(w, "\nready; SIGINT or SIGTERM stops it\n")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// readInfo loads <work-dir>/localcloud.json, written by a running local cloud.
func readInfo(work string) (localcloud.Info, error) {
	var info localcloud.Info
	raw, err := os.ReadFile(filepath.Join(work, "localcloud.json"))
	if err != nil {
		return info, fmt.Errorf("no local cloud in %s (start one with wsdirect-localcloud serve): %w", work, err)
	}
	return info, json.Unmarshal(raw, &info)
}

func printEnv(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsdirect-localcloud env", flag.ContinueOnError)
	fs.SetOutput(stderr)
	work := workDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	info, err := readInfo(*work)
	if err != nil {
		return err
	}
	for _, kv := range info.Env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(stdout, "export %s=%s\n", k, shellQuote(v))
	}
	return nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func status(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsdirect-localcloud status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	work := workDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	info, err := readInfo(*work)
	if err != nil {
		return err
	}
	resp, err := httpClient.Get(info.URL + "/localcloud/v1/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var sts []localcloud.InstanceStatus
	if err := json.NewDecoder(resp.Body).Decode(&sts); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSTATE\tPHASE\tPRIVATE\tPUBLIC\tBOOT\tUNITS")
	for _, s := range sts {
		var units []string
		for _, u := range s.Units {
			units = append(units, fmt.Sprintf("%s=%s(restarts %d)", u.Name, u.ActiveState, u.Restarts))
		}
		boot := s.Boot
		if s.BootError != "" {
			boot += ": " + s.BootError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, s.Phase, s.PrivateIP, s.PublicIP, boot, strings.Join(units, " "))
	}
	return tw.Flush()
}

func kill(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsdirect-localcloud kill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	work := workDirFlag(fs)
	unit := fs.String("unit", "", "SIGKILL only this unit's processes (its Restart= applies); default: the whole instance crashes")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: wsdirect-localcloud kill [-work-dir D] [-unit U] <instance-id>")
		return errUsage
	}
	info, err := readInfo(*work)
	if err != nil {
		return err
	}
	u := info.URL + "/localcloud/v1/instances/" + fs.Arg(0) + "/kill"
	if *unit != "" {
		u += "?unit=" + *unit
	}
	resp, err := httpClient.Post(u, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kill: %s", strings.TrimSpace(string(body)))
	}
	_, err = stdout.Write(body)
	return err
}
