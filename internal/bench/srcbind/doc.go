// Package srcbind dials from a chosen local source address without
// reserving the local port at bind time.
//
// A plain bind(ip, 0) before connect makes the kernel pick a port that is
// free for that address across every destination, so one source address
// gives at most ip_local_port_range ports in total, and the search for a
// free one slows down as they fill up. With IP_BIND_ADDRESS_NO_PORT (Linux
// 4.2+) the port is chosen at connect time from the full 4-tuple, so each
// source address gets its own port range per destination: the property the
// load generators and the port-ceiling experiment depend on.
package srcbind
