//! One invocation: validate → reconcile → respond, under a deadline guard.
