package dns

import (
	"github.com/miekg/dns"
)

// maxUDPSize is the largest UDP reply sent whatever a client advertises,
// and the size advertised to clients and upstreams: 1232 bytes avoids IP
// fragmentation on any path (DNS Flag Day 2020).
const maxUDPSize = 1232

// respond builds the reply to req from rec, or reports with forward that
// req is not the snapshot's to answer. It is the whole local path of a
// query: the server and FuzzServeDNS both call it.
func respond(rec *Records, req *dns.Msg, ttl uint32) (resp *dns.Msg, forward bool) {
	switch {
	case req.Response || len(req.Question) != 1:
		return errorReply(req, dns.RcodeFormatError), false
	case req.Opcode != dns.OpcodeQuery:
		return errorReply(req, dns.RcodeNotImplemented), false
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return errorReply(req, dns.RcodeBadVers), false
	}
	res := rec.Answer(req.Question[0], ttl)
	if !res.Local {
		return nil, true
	}
	resp = new(dns.Msg)
	resp.SetReply(req)
	resp.Rcode = res.Rcode
	resp.Authoritative = res.Rcode == dns.RcodeSuccess || res.Rcode == dns.RcodeNameError
	resp.RecursionAvailable = true // we forward what is not ours
	resp.Answer, resp.Ns, resp.Extra = res.Answer, res.Ns, res.Extra
	addOPT(resp, req)
	return resp, false
}

// errorReply is an empty reply to req with rcode.
func errorReply(req *dns.Msg, rcode int) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	resp.Rcode = rcode
	if rcode > 0xF {
		// Extended rcodes live partly in the OPT record: one must be sent.
		resp.SetEdns0(maxUDPSize, false)
		return resp
	}
	addOPT(resp, req)
	return resp
}

// addOPT answers EDNS with EDNS (RFC 6891): when req has an OPT record, the
// reply gets one advertising our buffer size.
func addOPT(resp, req *dns.Msg) {
	if opt := req.IsEdns0(); opt != nil && resp.IsEdns0() == nil {
		resp.SetEdns0(maxUDPSize, opt.Do())
	}
}

// udpSize is the largest UDP reply req's sender accepts: its EDNS buffer
// size, 512 without EDNS, never more than maxUDPSize.
func udpSize(req *dns.Msg) int {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(size, int(opt.UDPSize()))
	}
	return min(size, maxUDPSize)
}

// fitUDP truncates resp to what req's sender accepts over UDP, setting TC so
// that it retries over TCP.
func fitUDP(resp, req *dns.Msg) {
	resp.Truncate(udpSize(req))
}
