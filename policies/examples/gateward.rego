# The default entrypoint, `data.gateward.decision`, over one route table for every provider
# (gateward.data.json): each example decides the requests whose most specific routes take tokens
# from the request's issuer with a rule for its provider; a request no example takes is denied.
#
# Modules: ../common.rego, the provider files, the example files, this file. To serve a single
# provider, load only its files and set the entrypoint to its example's decision (or rename that
# example's package to `gateward`). Tie the route's `issuer` to the provider: a route table that
# gives the same path and issuer to two providers is decided by the first in the order below.
package gateward

import rego.v1

import data.gateward.common
import data.gateward.examples

default decision := {"allow": false, "reason": "no route allows this request"}

decision := examples.github_deploy.decision if {
	examples.github_deploy.applies
} else := examples.gitlab_deploy.decision if {
	examples.gitlab_deploy.applies
} else := examples.circleci_artifacts.decision if {
	examples.circleci_artifacts.applies
} else := examples.buildkite_deploy.decision if {
	examples.buildkite_deploy.applies
} else := examples.spiffe_service.decision if {
	examples.spiffe_service.applies
} else := examples.generic_api.decision if {
	examples.generic_api.applies
} else := {"allow": false, "reason": common.unrouted_reason}
