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

// importID is a parsed import ID that may name the secondary private IPs
// the imported resource owns: "<id>" adopts every secondary address of the
// interface; "<id>:10.0.1.20,10.0.1.21" adopts the listed ones only,
// "<id>:" none. wsdirect_node takes an instance ID, wsdirect_private_ips a
// network interface ID.
type importID struct {
	id          string
	secondaries []string // adopted addresses when listed
	listed      bool     // the ID has a ":" part (possibly empty)
}

// parseImportID parses raw, whose ID part must start with prefix ("i-",
// "eni-"); what names that kind of ID in errors.
func parseImportID(raw, prefix, what string) (importID, error) {
	id, list, listed := strings.Cut(raw, ":")
	if !strings.HasPrefix(id, prefix) || len(id) == len(prefix) {
		return importID{}, fmt.Errorf("expected %s (%s...), optionally followed by \":\" and the secondary private IPs it owns "+
			"(%s0123456789abcdef0:10.0.1.20,10.0.1.21), got %q", what, prefix, prefix, raw)
	}
	out := importID{id: id, listed: listed, secondaries: []string{}}
	if !listed || list == "" {
		return out, nil
	}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return importID{}, fmt.Errorf("import ID %q: %q is not an IPv4 address", raw, s)
		}
		if contains(out.secondaries, s) {
			return importID{}, fmt.Errorf("import ID %q lists %s twice", raw, s)
		}
		out.secondaries = append(out.secondaries, s)
	}
	return out, nil
}

// checkListedSecondaries checks that every address an import ID lists is a
// secondary private IP of the interface (have: its secondaries).
func checkListedSecondaries(imp importID, eniID, owner string, have []string) error {
	if missing := complement(imp.secondaries, have); len(missing) > 0 {
		return fmt.Errorf("%s %s not a secondary private IP of %s%s; it has %s",
			strings.Join(missing, ", "), isAre(len(missing)), eniID, owner, ipsOrNone(orderIPs(nil, have)))
	}
	return nil
}

// checkImportedSecondaries checks that every address a wsdirect_node
// import ID lists is a secondary private IP of the instance's primary
// interface.
func checkImportedSecondaries(ctx context.Context, api EC2API, imp importID) error {
	if len(imp.secondaries) == 0 {
		return nil
	}
	inst, err := describeInstance(ctx, api, imp.id)
	if err != nil {
		return fmt.Errorf("describing instance %s: %w", imp.id, err)
	}
	eni := primaryENI(inst)
	if eni == nil {
		return fmt.Errorf("instance %s has no network interface", imp.id)
	}
	return checkListedSecondaries(imp, aws.ToString(eni.NetworkInterfaceId), " (instance "+imp.id+")", secondaryIPs(eni))
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
