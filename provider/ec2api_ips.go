package provider

import (
	"net/netip"
	"slices"
	"sort"
)

// orderIPs returns the addresses in actual, ordered as in prev for those
// still present, followed by the rest in address order. EC2 returns
// secondary addresses in no promised order; this keeps a user's list (and a
// count-mode list once recorded) stable across refreshes.
func orderIPs(prev, actual []string) []string {
	have := make(map[string]bool, len(actual))
	for _, ip := range actual {
		have[ip] = true
	}
	out := make([]string, 0, len(actual))
	seen := make(map[string]bool, len(actual))
	for _, ip := range prev {
		if have[ip] && !seen[ip] {
			out = append(out, ip)
			seen[ip] = true
		}
	}
	var rest []string
	for _, ip := range actual {
		if !seen[ip] {
			rest = append(rest, ip)
			seen[ip] = true
		}
	}
	sortIPs(rest)
	return append(out, rest...)
}

// sortIPs sorts addresses numerically; unparsable strings sort last, by text.
func sortIPs(ips []string) {
	sort.SliceStable(ips, func(i, j int) bool {
		a, errA := netip.ParseAddr(ips[i])
		b, errB := netip.ParseAddr(ips[j])
		switch {
		case errA == nil && errB == nil:
			return a.Less(b)
		case errA == nil:
			return true
		case errB == nil:
			return false
		default:
			return ips[i] < ips[j]
		}
	})
}

// diffIPs returns the addresses to assign (in want's order) and to unassign
// (in have's order) to turn have into want.
func diffIPs(have, want []string) (add, remove []string) {
	for _, ip := range want {
		if !slices.Contains(have, ip) && !slices.Contains(add, ip) {
			add = append(add, ip)
		}
	}
	for _, ip := range have {
		if !slices.Contains(want, ip) && !slices.Contains(remove, ip) {
			remove = append(remove, ip)
		}
	}
	return add, remove
}

// intersectIPs returns the members of a that are also in b, in a's order.
func intersectIPs(a, b []string) []string {
	var out []string
	for _, ip := range a {
		if slices.Contains(b, ip) {
			out = append(out, ip)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mergeTags returns default tags overlaid with resource tags (resource wins).
func mergeTags(defaults, own map[string]string) map[string]string {
	out := make(map[string]string, len(defaults)+len(own))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// diffTags returns the tags to create or overwrite and the keys to delete.
func diffTags(have, want map[string]string) (set map[string]string, del []string) {
	set = map[string]string{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			set[k] = v
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			del = append(del, k)
		}
	}
	sort.Strings(del)
	return set, del
}

// ownTags derives the resource's own tags from all tags on the object:
// everything except entries that equal a default tag, unless the prior
// state or configuration claimed that key.
func ownTags(all, defaults, claimed map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if dv, isDefault := defaults[k]; isDefault && dv == v {
			if _, c := claimed[k]; !c {
				continue
			}
		}
		out[k] = v
	}
	return out
}
