import { operations, websockets } from '../../generated/registry.js';

/** The resource types and actions the spec's x-weir-authz use: what a policy may name. */
type Authz = { resource: string; action: string };
const authzOfSpec: Authz[] = [
  ...Object.values(operations).flatMap((op): Authz[] => ('authz' in op ? [op.authz] : [])),
  ...websockets.map((ws): Authz => ws['x-weir-authz']),
];

export const RESOURCE_TYPES: ReadonlySet<string> = new Set(authzOfSpec.map((a) => a.resource));
// `admin` and the dataset grant actions (AccessAction) are actions too, even where no operation uses them.
export const ACTIONS: ReadonlySet<string> = new Set([...authzOfSpec.map((a) => a.action), 'read', 'query', 'export', 'write', 'update', 'delete', 'admin']);

export const roleKey = (role: string): string => `role:${role}`;
export const subjectKey = (subject: string): string => `subject:${subject}`;
export const objectKey = (type: string, id?: string): string => `${type}:${id ?? '*'}`;
