package ec2sim

import (
	"fmt"
	"net/netip"
	"time"
)

// owned reports whether a Lifecycle, rather than DescribeInstances calls, drives the states
// that take time.
func (s *Server) owned() bool { return s.cfg.Lifecycle != nil }

// InstanceBooted ends a pending state under a Lifecycle: the instance is "running" from now on.
// An instance that is no longer pending (terminated meanwhile) is an error the caller may
// ignore.
func (s *Server) InstanceBooted(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[id]
	switch {
	case !s.owned():
		return fmt.Errorf("ec2sim: InstanceBooted %s: no Config.Lifecycle owns the instance states", id)
	case in == nil:
		return fmt.Errorf("ec2sim: InstanceBooted %s: no such instance", id)
	case in.state != statePending:
		return fmt.Errorf("ec2sim: InstanceBooted %s: instance is %s, not pending", id, in.state)
	}
	in.state = stateRunning
	return nil
}

// InstanceShutDown ends a shutting-down or stopping state under a Lifecycle: a terminating
// instance becomes "terminated" and releases its interfaces (and with them its addresses), a
// stopping one becomes "stopped" and gives back its auto-assigned public IP, as on EC2.
func (s *Server) InstanceShutDown(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[id]
	switch {
	case !s.owned():
		return fmt.Errorf("ec2sim: InstanceShutDown %s: no Config.Lifecycle owns the instance states", id)
	case in == nil:
		return fmt.Errorf("ec2sim: InstanceShutDown %s: no such instance", id)
	case in.state == stateShuttingDown:
		s.finishTermination(in)
	case in.state == stateStopping:
		s.finishStop(in)
	default:
		return fmt.Errorf("ec2sim: InstanceShutDown %s: instance is %s, not shutting down or stopping", id, in.state)
	}
	s.cfg.Lifecycle.NetworkChanged()
	return nil
}

// finishTermination makes a shutting-down instance terminated. Interfaces marked
// DeleteOnTermination go away with their addresses; the others are detached and stay
// "available", as in EC2. Elastic IPs on deleted interfaces become unassociated.
func (s *Server) finishTermination(in *instance) {
	in.state = stateTerminated
	in.terminatedAt = time.Now().UTC()
	for _, e := range in.enis {
		if e.deleteOnTerm {
			s.releaseENI(e)
		} else {
			e.inst, e.attachmentID = nil, ""
		}
	}
	in.enis = nil
}

// finishStop makes a stopping instance stopped: its auto-assigned public IP goes back to the
// pool (private and Elastic IPs stay).
func (s *Server) finishStop(in *instance) {
	in.state = stateStopped
	for _, e := range in.enis {
		if e.publicIP.IsValid() {
			delete(s.publicUsed, e.publicIP)
			e.publicIP = netip.Addr{}
		}
	}
}

func (s *Server) stopInstances(p params) (any, error) {
	targets, err := s.stateChangeTargets(p)
	if err != nil {
		return nil, err
	}
	for _, in := range targets {
		if in.state == stateShuttingDown || in.state == stateTerminated {
			return nil, errorf(codeIncorrectInstanceState, "This instance '%s' is not in a state from which it can be stopped.", in.id)
		}
	}
	resp := &stopInstancesResp{}
	for _, in := range targets {
		prev := in.state
		if in.state == statePending || in.state == stateRunning {
			in.state, in.shutdownLeft = stateStopping, s.cfg.ShutdownDescribes
			if s.owned() {
				s.cfg.Lifecycle.ShuttingDown(s.snapshotOf(in))
			}
		}
		resp.Instances = append(resp.Instances, stateChange(in, prev))
	}
	return resp, nil
}

func (s *Server) startInstances(p params) (any, error) {
	targets, err := s.stateChangeTargets(p)
	if err != nil {
		return nil, err
	}
	for _, in := range targets {
		if in.state != stateStopped && in.state != statePending && in.state != stateRunning {
			return nil, errorf(codeIncorrectInstanceState, "The instance '%s' is not in a state from which it can be started.", in.id)
		}
	}
	resp := &startInstancesResp{}
	for _, in := range targets {
		prev := in.state
		if in.state == stateStopped {
			in.state, in.pendingLeft = statePending, s.cfg.PendingDescribes
			// A single-interface instance launched with a public IP gets a fresh one, unless an
			// Elastic IP holds its primary address.
			if len(in.enis) == 1 {
				e := in.enis[0]
				if e.wantPublic && !e.publicIP.IsValid() && len(e.ips) > 0 && s.eipFor(e, e.ips[0]) == nil {
					if a, err := s.allocatePublicIP(); err == nil {
						e.publicIP = a
					}
				}
			}
			if s.owned() {
				s.cfg.Lifecycle.Booting(s.snapshotOf(in))
			}
		}
		resp.Instances = append(resp.Instances, stateChange(in, prev))
	}
	return resp, nil
}

// stateChangeTargets resolves the InstanceId.N list of Stop/Start/TerminateInstances.
func (s *Server) stateChangeTargets(p params) ([]*instance, error) {
	ids := p.list("InstanceId")
	if len(ids) == 0 {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter InstanceId")
	}
	var targets []*instance
	for _, id := range ids {
		in, err := s.instanceByID(id, false)
		if err != nil {
			return nil, err
		}
		targets = append(targets, in)
	}
	return targets, nil
}

func stateChange(in *instance, prev string) xStateChange {
	return xStateChange{
		InstanceID:    in.id,
		CurrentState:  xState{Code: stateCodes[in.state], Name: in.state},
		PreviousState: xState{Code: stateCodes[prev], Name: prev},
	}
}
