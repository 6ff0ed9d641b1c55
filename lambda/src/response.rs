//! The CloudFormation response body and its delivery to the pre-signed ResponseURL.
