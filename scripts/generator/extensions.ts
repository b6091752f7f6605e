import { z } from 'zod';

/**
 * The shapes of the `x-weir-*` extensions (openapi/README.md). The generator refuses a spec whose
 * extensions don't fit, so the plugins can trust what the registry hands them.
 */
const identifier = z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a lower-case name such as dataset');

export const authzSchema = z
  .object({
    resource: identifier,
    action: identifier,
    id: z.string().min(1).optional(),
  })
  .strict();

export const rateLimitSchema = z
  .object({
    policy: identifier,
    cost: z.union([z.number().positive(), z.literal('rows')]).optional(),
  })
  .strict();

export const auditSchema = z
  .object({
    capture: z.array(z.string().regex(/^(body\.)?[A-Za-z_][A-Za-z0-9_-]*$/)).optional(),
    event: z.string().regex(/^[a-z][a-z0-9_.-]*$/).optional(),
    client_ip: z.enum(['full', 'anonymized']).optional(),
  })
  .strict();

export const bodySchema = z
  .object({
    limit: z.string().regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)$/i, 'expected a size such as 8kb or 256mb').optional(),
    stream: z.boolean().optional(),
  })
  .strict();

const dateTime = z.string().datetime({ offset: true });

export const operationExtensions = {
  'x-weir-authz': authzSchema,
  'x-weir-rate-limit': rateLimitSchema,
  'x-weir-audit': auditSchema,
  'x-weir-require-mfa': z.literal(true),
  'x-weir-body': bodySchema,
  'x-weir-sunset': dateTime,
  'x-weir-deprecated-at': dateTime,
} as const;

export const websocketSchema = z
  .object({
    path: z.string().startsWith('/'),
    summary: z.string().min(1),
    description: z.string().min(1),
    'x-weir-authz': authzSchema.extend({ id: z.string().optional() }).strict(),
    'x-weir-rate-limit': rateLimitSchema,
  })
  .strict();

export interface OperationExtensions {
  authz?: z.infer<typeof authzSchema>;
  rateLimit?: z.infer<typeof rateLimitSchema>;
  audit?: z.infer<typeof auditSchema>;
  requireMfa?: true;
  body?: z.infer<typeof bodySchema>;
  sunset?: string;
  deprecatedAt?: string;
}

const fieldNames: Record<keyof typeof operationExtensions, keyof OperationExtensions> = {
  'x-weir-authz': 'authz',
  'x-weir-rate-limit': 'rateLimit',
  'x-weir-audit': 'audit',
  'x-weir-require-mfa': 'requireMfa',
  'x-weir-body': 'body',
  'x-weir-sunset': 'sunset',
  'x-weir-deprecated-at': 'deprecatedAt',
};

/** Validates an operation's `x-weir-*` keys; returns them under camelCase names, or the problems found. */
export function readOperationExtensions(where: string, op: Record<string, unknown>): { value: OperationExtensions; problems: string[] } {
  const value: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, raw] of Object.entries(op)) {
    if (!key.startsWith('x-weir-')) continue;
    const schema = operationExtensions[key as keyof typeof operationExtensions];
    if (!schema) {
      problems.push(`${where}: unknown extension ${key} (known: ${Object.keys(operationExtensions).join(', ')})`);
      continue;
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const at = issue.path.length ? `.${issue.path.join('.')}` : '';
        problems.push(`${where}: ${key}${at}: ${issue.message}`);
      }
      continue;
    }
    value[fieldNames[key as keyof typeof operationExtensions]] = parsed.data;
  }
  return { value: value as OperationExtensions, problems };
}
