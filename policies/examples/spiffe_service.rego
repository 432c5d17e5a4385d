# Example entrypoint for SPIFFE JWT-SVIDs: per-route rules from data.routes (see spiffe_service.data.json),
# each route carrying a `spiffe` rule (fields: see ../spiffe.rego). Evaluate
# `data.gateward.examples.spiffe_service.decision`, or load gateward.rego beside it for the default
# entrypoint `data.gateward.decision`.
#
# Modules: ../common.rego, ../spiffe.rego, this file.
package gateward.examples.spiffe_service

import rego.v1

import data.gateward.common
import data.gateward.spiffe as sp

claims := input.token.claims

# The most specific routes for this request that take JWT-SVID tokens from its issuer.
routes := common.routes_for("spiffe")

applies if count(routes) > 0

allowing := [r | some r in routes; sp.allowed(r.spiffe)]

default decision := {"allow": false, "reason": "no route allows this request"}

decision := {"allow": false, "reason": common.unrouted_reason} if not applies

decision := {
	"allow": true,
	"reason": sprintf("route %s: %s", [r.name, claims.sub]),
	"headers": {
		"x-gateward-route": r.name,
		"x-spiffe-id": claims.sub,
	},
} if {
	count(allowing) > 0
	r := allowing[0]
}

decision := {"allow": false, "reason": sprintf("route %s: %s", [r.name, sp.denial(r.spiffe)])} if {
	applies
	count(allowing) == 0
	r := routes[0]
}
