package provider

// What a wsdirect_node owns, and so may change or release. EC2 records no
// owner for a secondary private IP, and Terraform may import an instance
// that was set up by hand, so the rules are explicit:
//
//   - Secondary private IPs: those recorded in state (secondary_private_ips).
//     A created node records the addresses it launched with or assigned; an
//     imported one the addresses its import ID names, or every secondary
//     address of the interface when the ID names none. An update unassigns
//     only owned addresses; others on the interface (a wsdirect_private_ips,
//     addresses assigned by hand) are neither reported nor touched.
//     Termination frees every address of the primary interface anyway.
//   - Elastic IPs: those tagged wsdirect:node = <instance ID>. The provider
//     tags every address it allocates, so a created node owns its own; an
//     imported node owns the ones an earlier wsdirect_node allocated for the
//     same instance, and any address someone tags so to hand it over. Destroy
//     releases exactly these. Any other Elastic IP, even one associated with
//     the node's primary address, stays allocated (EC2 disassociates it when
//     the instance terminates).

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// nodeImportID is a parsed wsdirect_node import ID: "i-…" adopts every
// secondary address of the interface; "i-…:10.0.1.20,10.0.1.21" adopts the
// listed ones only, "i-…:" none.
type nodeImportID struct {
	instanceID  string
	secondaries []string // adopted addresses when listed
	listed      bool     // the ID has a ":" part (possibly empty)
}

func parseNodeImportID(raw string) (nodeImportID, error) {
	id, list, listed := strings.Cut(raw, ":")
	if !strings.HasPrefix(id, "i-") || len(id) < 3 {
		return nodeImportID{}, fmt.Errorf("expected an instance ID (i-...), optionally followed by \":\" and the secondary private IPs the node owns "+
			"(i-0123456789abcdef0:10.0.1.20,10.0.1.21), got %q", raw)
	}
	out := nodeImportID{instanceID: id, listed: listed, secondaries: []string{}}
	if !listed || list == "" {
		return out, nil
	}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nodeImportID{}, fmt.Errorf("import ID %q: %q is not an IPv4 address", raw, s)
		}
		if contains(out.secondaries, s) {
			return nodeImportID{}, fmt.Errorf("import ID %q lists %s twice", raw, s)
		}
		out.secondaries = append(out.secondaries, s)
	}
	return out, nil
}

// checkImportedSecondaries checks that every address an import ID lists is a
// secondary private IP of the instance's primary interface.
func checkImportedSecondaries(ctx context.Context, api EC2API, imp nodeImportID) error {
	if len(imp.secondaries) == 0 {
		return nil
	}
	inst, err := describeInstance(ctx, api, imp.instanceID)
	if err != nil {
		return fmt.Errorf("describing instance %s: %w", imp.instanceID, err)
	}
	eni := primaryENI(inst)
	if eni == nil {
		return fmt.Errorf("instance %s has no network interface", imp.instanceID)
	}
	if missing := complement(imp.secondaries, secondaryIPs(eni)); len(missing) > 0 {
		return fmt.Errorf("%s %s not a secondary private IP of %s (instance %s); it has %s",
			strings.Join(missing, ", "), isAre(len(missing)), aws.ToString(eni.NetworkInterfaceId), imp.instanceID, ipsOrNone(orderIPs(nil, secondaryIPs(eni))))
	}
	return nil
}

// launchedSecondaries checks that a just-launched interface carries the
// secondary addresses asked for (the explicit list, or count of them) and
// returns them: the list in its order, or EC2's picks in address order. The
// error names the instance, the interface and what is missing; the
// addresses returned with it are those the interface does have.
func launchedSecondaries(instanceID string, eni *ec2types.InstanceNetworkInterface, explicit []string, count int) ([]string, error) {
	have := secondaryIPs(eni)
	eniID := aws.ToString(eni.NetworkInterfaceId)
	if len(explicit) > 0 {
		if missing := complement(explicit, have); len(missing) > 0 {
			return intersectIPs(explicit, have), fmt.Errorf("instance %s was launched without %d of the %d secondary private IPs asked for: "+
				"its interface %s lacks %s (it has %s)", instanceID, len(missing), len(explicit), eniID, strings.Join(missing, ", "), ipsOrNone(orderIPs(nil, have)))
		}
		return explicit, nil
	}
	if len(have) < count {
		return orderIPs(nil, have), fmt.Errorf("instance %s was launched with %d of the %d secondary private IPs asked for: its interface %s has %s",
			instanceID, len(have), count, eniID, ipsOrNone(orderIPs(nil, have)))
	}
	return orderIPs(nil, have), nil
}

// nodeIPs lists the private addresses the node owns: the primary and its
// own secondaries.
func nodeIPs(primary string, secondaries []string) []string {
	return append([]string{primary}, secondaries...)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
