import { randomBase62 } from '../identity/random.js';
import type { MetadataStore, Queryable } from '../stores/index.js';
import type { PolicyRule } from './policy-files.js';
import type { FieldRules } from './rules.js';
import { objectKey, roleKey, subjectKey } from './vocabulary.js';

export interface GrantPrincipal {
  type: 'role' | 'subject';
  id: string;
}

export interface Grant {
  id: string;
  tenant: string;
  resourceType: string;
  resourceId: string;
  principal: GrantPrincipal;
  actions: string[];
  rowRule: string | null;
  fieldRules: FieldRules;
  expiresAt: Date | null;
  createdAt: Date;
  createdBy: string;
}

export interface GrantInput {
  principal: GrantPrincipal;
  actions: string[];
  rowRule?: string | null;
  fieldRules?: FieldRules;
  expiresAt?: Date | null;
}

export type RevokeInput = ({ grantId: string } | { principal: GrantPrincipal }) & { actions?: string[] };

export interface ResourceGrants {
  grants: Grant[];
  updatedAt: Date | null;
}

interface Row {
  grant_id: string;
  tenant: string;
  resource_type: string;
  resource_id: string;
  principal_type: 'role' | 'subject';
  principal_id: string;
  actions: string[];
  row_rule: string | null;
  field_rules: FieldRules;
  expires_at: Date | null;
  created_at: Date;
  created_by: string;
}

const toGrant = (r: Row): Grant => ({
  id: r.grant_id,
  tenant: r.tenant,
  resourceType: r.resource_type,
  resourceId: r.resource_id,
  principal: { type: r.principal_type, id: r.principal_id },
  actions: r.actions,
  rowRule: r.row_rule,
  fieldRules: r.field_rules ?? {},
  expiresAt: r.expires_at && new Date(r.expires_at),
  createdAt: new Date(r.created_at),
  createdBy: r.created_by,
});

/** The grants that GET/POST /v1/datasets/{id}/access manage, in the metadata store. */
export class GrantStore {
  constructor(private readonly metadata: MetadataStore) {}

  async forResource(tenant: string, type: string, id: string): Promise<ResourceGrants> {
    return forResource(this.metadata, tenant, type, id);
  }

  /** Revokes, then grants, in one transaction; answers the grants as they are afterwards. */
  async apply(tenant: string, type: string, id: string, change: { revoke: RevokeInput[]; grant: GrantInput[] }, by: string): Promise<ResourceGrants> {
    return this.metadata.transaction(async (tx) => {
      const scope = [tenant, type, id];
      for (const r of change.revoke) {
        const match =
          'grantId' in r
            ? { sql: 'grant_id = $4', params: [r.grantId] }
            : { sql: 'principal_type = $4 AND principal_id = $5', params: [r.principal.type, r.principal.id] };
        const where = `tenant = $1 AND resource_type = $2 AND resource_id = $3 AND ${match.sql}`;
        if (r.actions?.length) {
          await tx.query(
            `UPDATE access_grants SET actions = ARRAY(SELECT a FROM unnest(actions) a WHERE NOT (a = ANY($${match.params.length + 4}::text[]))) WHERE ${where}`,
            [...scope, ...match.params, r.actions],
          );
          await tx.query(`DELETE FROM access_grants WHERE ${where} AND cardinality(actions) = 0`, [...scope, ...match.params]);
        } else {
          await tx.query(`DELETE FROM access_grants WHERE ${where}`, [...scope, ...match.params]);
        }
      }
      const now = new Date();
      for (const g of change.grant) {
        await tx.query(
          `INSERT INTO access_grants (grant_id, tenant, resource_type, resource_id, principal_type, principal_id, actions, row_rule, field_rules, expires_at, created_at, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (tenant, resource_type, resource_id, principal_type, principal_id) DO UPDATE SET
             actions = EXCLUDED.actions, row_rule = EXCLUDED.row_rule, field_rules = EXCLUDED.field_rules,
             expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by`,
          [
            `gr_${randomBase62(20)}`,
            ...scope,
            g.principal.type,
            g.principal.id,
            g.actions,
            g.rowRule ?? null,
            JSON.stringify(g.fieldRules ?? {}),
            g.expiresAt ?? null,
            now,
            by,
          ],
        );
      }
      await tx.query(
        `INSERT INTO access_changes (tenant, resource_type, resource_id, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant, resource_type, resource_id) DO UPDATE SET updated_at = EXCLUDED.updated_at`,
        [...scope, now],
      );
      return forResource(tx, tenant, type, id);
    });
  }

  /** Every grant that has not lapsed, as Casbin policy lines. */
  async policyRules(now = new Date()): Promise<PolicyRule[]> {
    const { rows } = await this.metadata.query<Row>(`SELECT * FROM access_grants WHERE expires_at IS NULL OR expires_at > $1`, [now]);
    return rows.map(toGrant).flatMap(grantRules);
  }
}

async function forResource(db: Queryable, tenant: string, type: string, id: string): Promise<ResourceGrants> {
  const { rows } = await db.query<Row>(
    `SELECT * FROM access_grants WHERE tenant = $1 AND resource_type = $2 AND resource_id = $3 ORDER BY created_at, grant_id`,
    [tenant, type, id],
  );
  const changed = await db.query<{ updated_at: Date }>(
    `SELECT updated_at FROM access_changes WHERE tenant = $1 AND resource_type = $2 AND resource_id = $3`,
    [tenant, type, id],
  );
  const updatedAt = changed.rows[0]?.updated_at;
  return { grants: rows.map(toGrant), updatedAt: updatedAt ? new Date(updatedAt) : null };
}

/** A grant as policy: one `p` line per action (lapsing with its expiry), and its row and field rules. */
export function grantRules(g: Grant): PolicyRule[] {
  const sub = g.principal.type === 'role' ? roleKey(g.principal.id) : subjectKey(g.principal.id);
  const obj = objectKey(g.resourceType, g.resourceId);
  const cond = g.expiresAt ? `r.env.now < ${g.expiresAt.getTime()}` : 'true';
  const rules: PolicyRule[] = g.actions.map((act) => ['p', sub, g.tenant, obj, act, cond, 'allow']);
  if (g.rowRule) rules.push(['p2', sub, g.tenant, obj, g.rowRule]);
  if (Object.keys(g.fieldRules).length) rules.push(['p3', sub, g.tenant, obj, JSON.stringify(g.fieldRules)]);
  return rules;
}
