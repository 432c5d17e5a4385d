# Example entrypoint for Buildkite: per-route rules from data.routes (see buildkite_deploy.data.json),
# each route carrying a `buildkite` rule (fields: see ../buildkite.rego). Evaluate
# `data.gateward.examples.buildkite_deploy.decision`, or load gateward.rego beside it for the default
# entrypoint `data.gateward.decision`.
#
# Modules: ../common.rego, ../buildkite.rego, this file.
package gateward.examples.buildkite_deploy

import rego.v1

import data.gateward.common
import data.gateward.buildkite as bk

claims := input.token.claims

# The most specific routes for this request that take Buildkite tokens from its issuer.
routes := common.routes_for("buildkite")

applies if count(routes) > 0

allowing := [r | some r in routes; bk.allowed(r.buildkite)]

default decision := {"allow": false, "reason": "no route allows this request"}

decision := {"allow": false, "reason": common.unrouted_reason} if not applies

decision := {
	"allow": true,
	"reason": sprintf("route %s: %s/%s build %v", [r.name, claims.organization_slug, claims.pipeline_slug, claims.build_number]),
	"headers": {
		"x-gateward-route": r.name,
		"x-ci-pipeline": sprintf("%s/%s", [claims.organization_slug, claims.pipeline_slug]),
		"x-ci-build-number": sprintf("%v", [claims.build_number]),
		"x-ci-commit": claims.build_commit,
	},
} if {
	count(allowing) > 0
	r := allowing[0]
}

decision := {"allow": false, "reason": sprintf("route %s: %s", [r.name, bk.denial(r.buildkite)])} if {
	applies
	count(allowing) == 0
	r := routes[0]
}
