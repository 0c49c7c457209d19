# ECS on Fargate: one cluster, three task definitions from the same image.
#
# * sync  - `athens sync`, the single writer. desired_count = 1 and a
#           deployment of minimum 0 % / maximum 100 %: ECS stops the old task
#           before it starts the new one, so two never run at once. (Athens'
#           advisory-lock lease would make a second one wait as standby
#           anyway; this just avoids paying for it.)
# * api   - `athens serve`, stateless, behind the ALB, autoscaled.
# * admin - no service; run on demand for `migrate`, `setup`, `grant-runtime`,
#           `reindex`, `status`, `verify` (README.md "First deployment"), as the
#           database owner and with full access to the domain.

locals {
  image = "${var.ecr_repository_url}:${var.image_tag}"

  base_environment = merge({
    ATHENS_ENGINE_URL = var.engine_url
    ATHENS_INDEX      = var.athens_index
    # Every request to OpenSearch is SigV4-signed with the task role; the region comes from
    # AWS_REGION, which ECS sets.
    ATHENS_ENGINE_AUTH = "aws-sigv4"
    ATHENS_HTTP_ADDR   = "0.0.0.0:${var.app_port}"
    ATHENS_LOG_FORMAT  = "json"
  }, var.extra_environment)

  # sync and api log in as the runtime role; admin tasks as the owner, whose URL carries no
  # password (ATHENS_DATABASE_PASSWORD comes from RDS's own secret).
  runtime_secrets = [
    { name = "ATHENS_DATABASE_URL", valueFrom = "${var.database_runtime_secret_arn}:url::" },
  ]
  admin_secrets = [
    { name = "ATHENS_DATABASE_PASSWORD", valueFrom = "${var.database_owner_secret_arn}:password::" },
    # For `athens grant-runtime`: the password the runtime role gets.
    { name = "ATHENS_RUNTIME_PASSWORD", valueFrom = "${var.database_runtime_secret_arn}:password::" },
  ]

  roles = {
    api = {
      command      = ["serve"]
      cpu          = var.api_cpu
      memory       = var.api_memory
      port_mapping = true
      environment  = local.base_environment
      secrets      = local.runtime_secrets
    }
    sync = {
      command      = ["sync"]
      cpu          = var.sync_cpu
      memory       = var.sync_memory
      port_mapping = false
      # The sync's metrics (lag, backlog, dead letters, write failures) as embedded-metric-format
      # log lines: CloudWatch turns them into metrics without an agent or a scraper.
      environment = merge(local.base_environment, { ATHENS_METRICS_EMF = "true", ATHENS_METRICS_EMF_STACK = var.name })
      secrets     = local.runtime_secrets
    }
    admin = {
      command      = ["status"]
      cpu          = var.sync_cpu
      memory       = var.sync_memory
      port_mapping = false
      environment  = merge(local.base_environment, { ATHENS_DATABASE_URL = var.database_owner_url })
      secrets      = local.admin_secrets
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# ECS's service-linked role exists once per account, created by ECS on first use; on an account
# that never ran ECS, services created right after the cluster can fail while it appears. With
# create_service_linked_role it is created first (and waited for), as OpenSearch's is.
resource "aws_iam_service_linked_role" "ecs" {
  count            = var.create_service_linked_role ? 1 : 0
  aws_service_name = "ecs.amazonaws.com"
}

resource "terraform_data" "service_linked_role_propagation" {
  count            = var.create_service_linked_role ? 1 : 0
  triggers_replace = aws_iam_service_linked_role.ecs[0].id

  provisioner "local-exec" {
    command = "sleep 20"
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  depends_on = [terraform_data.service_linked_role_propagation]

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.roles

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Writable scratch space; the root filesystem is read-only.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "athens"
      image                  = local.image
      essential              = true
      command                = each.value.command
      environment            = [for k, v in each.value.environment : { name = k, value = v }]
      secrets                = each.value.secrets
      readonlyRootFilesystem = true
      privileged             = false
      stopTimeout            = 60 # let the sync finish its batch and release the lease on SIGTERM
      linuxParameters        = { initProcessEnabled = true }
      mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      portMappings = each.value.port_mapping ? [
        { containerPort = var.app_port, hostPort = var.app_port, protocol = "tcp" }
      ] : []
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = var.region
          awslogs-stream-prefix = each.key
        }
      }
    }
  ])
}

resource "aws_ecs_service" "sync" {
  name                = "${var.name}-sync"
  cluster             = aws_ecs_cluster.this.id
  task_definition     = aws_ecs_task_definition.this["sync"].arn
  launch_type         = "FARGATE"
  platform_version    = "LATEST"
  desired_count       = var.run_services && var.run_sync ? 1 : 0
  propagate_tags      = "SERVICE"
  scheduling_strategy = "REPLICA"

  # Never two writers: stop the old task before starting the new one.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.sync_security_group_id]
    assign_public_ip = false
  }
}

resource "aws_ecs_service" "api" {
  name                              = "${var.name}-api"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this["api"].arn
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  desired_count                     = var.run_services ? var.api_min_count : 0
  propagate_tags                    = "SERVICE"
  scheduling_strategy               = "REPLICA"
  health_check_grace_period_seconds = 60

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.api_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = "athens"
    container_port   = var.app_port
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling after creation
  }
}

# --- API autoscaling -----------------------------------------------------------

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.run_services ? var.api_min_count : 0
  max_capacity       = var.run_services ? var.api_max_count : 0
}

# Two target-tracking policies on the same target: the API scales out on whichever asks for more.
locals {
  api_scaling = {
    cpu = {
      target = var.api_cpu_target_percent
      metric = "ECSServiceAverageCPUUtilization"
      label  = null
    }
    requests = {
      target = var.api_requests_per_target_per_minute
      metric = "ALBRequestCountPerTarget"
      label  = "${var.alb_arn_suffix}/${var.target_group_arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_policy" "api" {
  for_each = local.api_scaling

  name               = "${var.name}-api-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = each.value.metric
      resource_label         = each.value.label
    }
  }
}

moved {
  from = aws_appautoscaling_policy.api_cpu
  to   = aws_appautoscaling_policy.api["cpu"]
}

moved {
  from = aws_appautoscaling_policy.api_requests
  to   = aws_appautoscaling_policy.api["requests"]
}
