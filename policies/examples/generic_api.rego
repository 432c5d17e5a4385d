# Example entrypoint for any OIDC issuer: per-route rules from data.routes (see generic_api.data.json),
# each route carrying a `generic` rule (fields: see ../generic.rego). Evaluate
# `data.gateward.examples.generic_api.decision`, or load gateward.rego beside it for the default
# entrypoint `data.gateward.decision`.
#
# Modules: ../common.rego, ../generic.rego, this file.
package gateward.examples.generic_api

import rego.v1

import data.gateward.common
import data.gateward.generic as gen

claims := input.token.claims

# The most specific routes for this request that take tokens from its issuer.
routes := common.routes_for("generic")

applies if count(routes) > 0

allowing := [r | some r in routes; gen.allowed(r.generic)]

default decision := {"allow": false, "reason": "no route allows this request"}

decision := {"allow": false, "reason": common.unrouted_reason} if not applies

decision := {
	"allow": true,
	"reason": sprintf("route %s: %s %s", [r.name, claims.iss, claims.sub]),
	"headers": {
		"x-gateward-route": r.name,
		"x-oidc-issuer": claims.iss,
		"x-oidc-subject": claims.sub,
	},
} if {
	count(allowing) > 0
	r := allowing[0]
}

decision := {"allow": false, "reason": sprintf("route %s: %s", [r.name, gen.denial(r.generic)])} if {
	applies
	count(allowing) == 0
	r := routes[0]
}
