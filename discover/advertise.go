package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// AdvertiseAuto is the -advertise value that asks EC2 instance metadata for
// the instance's public IPv4 address.
const AdvertiseAuto = "auto"

// Advertise resolves an -advertise flag value to the address clients dial.
//
// "auto" reads public-ipv4 from EC2 instance metadata with IMDSv2 (session
// token) through imdsClient (nil means imds.New with default options). An
// instance without a public IPv4 address is a clear error, not a silent
// fallback to the private one.
//
// Anything else must be an IP address or a DNS host name, without a port
// (the port has its own flag, -advertise-port).
func Advertise(ctx context.Context, flagValue string, imdsClient *imds.Client) (string, error) {
	v := strings.TrimSpace(flagValue)
	if v == "" {
		return "", errors.New("advertise address is empty (want an IP, a host name, or \"auto\")")
	}
	if strings.EqualFold(v, AdvertiseAuto) {
		return publicIPv4(ctx, imdsClient)
	}
	return checkAddr(v)
}

func publicIPv4(ctx context.Context, client *imds.Client) (string, error) {
	if client == nil {
		client = imds.New(imds.Options{})
	}
	out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "public-ipv4"})
	if err != nil {
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
			return "", errors.New("advertise auto: this instance has no public IPv4 address (instance metadata public-ipv4 is 404); give it one or pass -advertise <ip|host>")
		}
		return "", fmt.Errorf("advertise auto: read public-ipv4 from instance metadata (IMDSv2): %w", err)
	}
	defer out.Content.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Content, 256))
	if err != nil {
		return "", fmt.Errorf("advertise auto: read public-ipv4: %w", err)
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(string(raw)))
	if err != nil || !ip.Is4() {
		return "", fmt.Errorf("advertise auto: instance metadata public-ipv4 is %q, not an IPv4 address", strings.TrimSpace(string(raw)))
	}
	return ip.String(), nil
}

// checkAddr validates a literal advertise address.
func checkAddr(v string) (string, error) {
	if ip, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		if ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
			return "", fmt.Errorf("advertise address %s: clients cannot dial an unspecified, multicast or zoned address", v)
		}
		return ip.String(), nil
	}
	if _, port, err := net.SplitHostPort(v); err == nil && isDigits(port) {
		return "", fmt.Errorf("advertise address %q includes a port (%s): pass the port with -advertise-port", v, port)
	}
	if err := checkHostname(v); err != nil {
		return "", fmt.Errorf("advertise address %q: %w", v, err)
	}
	return strings.TrimSuffix(strings.ToLower(v), "."), nil
}

// checkHostname accepts RFC 1123 host names: dot-separated labels of
// letters, digits and hyphens, 1-63 characters, no leading or trailing
// hyphen, 253 characters in all.
func checkHostname(h string) error {
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return errors.New("not an IP address, and not a host name of 1-253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 {
			return errors.New("not an IP address, and a host name label is empty or longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host name label %q starts or ends with '-'", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("not an IP address, and host name label %q has invalid character %q", label, r)
			}
		}
	}
	return nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// WaitPublicIPv4 reads the instance's public IPv4 address as
// Advertise("auto") does, and while the instance has none yet (an Elastic
// IP is associated only after launch) or its metadata does not answer, asks
// again: first after retryMin, doubling up to retryMax, until an address
// comes, ctx ends, or within has passed (then it returns the last error).
// Every failed attempt is logged at info level on log (nil: not logged), so
// a process that waits says why.
func WaitPublicIPv4(ctx context.Context, client *imds.Client, retryMin, retryMax, within time.Duration, log *slog.Logger) (string, error) {
	if retryMin <= 0 || retryMax < retryMin || within <= 0 {
		return "", fmt.Errorf("discover: WaitPublicIPv4 retry %s..%s within %s: want 0 < retryMin <= retryMax and within > 0", retryMin, retryMax, within)
	}
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	wait := retryMin
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		ip, err := publicIPv4(actx, client)
		acancel()
		if err == nil {
			return ip, nil
		}
		if log != nil {
			log.Info("waiting for this instance's public IPv4 address", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no public IPv4 address within %s: %w", within, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}
