output "domain_arn" {
  description = "ARN of the OpenSearch domain."
  value       = aws_opensearch_domain.this.arn
}

output "domain_name" {
  description = "Name of the OpenSearch domain."
  value       = aws_opensearch_domain.this.domain_name
}

output "endpoint_url" {
  description = "HTTPS URL of the domain's VPC endpoint (ATHENS_ENGINE_URL)."
  value       = "https://${aws_opensearch_domain.this.endpoint}"
}

output "dashboards_url" {
  description = "OpenSearch Dashboards URL (reachable only from inside the VPC)."
  value       = "https://${aws_opensearch_domain.this.dashboard_endpoint}"
}
