import type { Handler } from '../../generated/handlers.js';
import type { AccessControl } from '../authz/index.js';
import type { Grant, GrantInput, ResourceGrants, RevokeInput } from '../authz/grants.js';
import { fieldRulesError, rowRuleError, type FieldRules } from '../authz/rules.js';
import { ProblemError, type ProblemDetail } from '../problem.js';
import { principalOf } from './identity.js';

export interface AccessDeps {
  access: AccessControl;
}

/**
 * GET/POST /v1/datasets/{datasetId}/access. The authz plugin has already resolved the dataset in
 * the caller's tenant and checked `admin` on it; a change reloads the policy here and is announced
 * to every other gateway process.
 */
export function accessHandlers({ access }: AccessDeps): {
  getDatasetAccess: Handler<'getDatasetAccess'>;
  updateDatasetAccess: Handler<'updateDatasetAccess'>;
} {
  return {
    getDatasetAccess: async ({ params, req }) => {
      const grants = await access.grants.forResource(principalOf(req).tenant, 'dataset', params.datasetId);
      return { status: 200, body: datasetAccessJson(params.datasetId, grants) };
    },

    updateDatasetAccess: async ({ params, body, req }) => {
      const principal = principalOf(req);
      const errors: ProblemDetail[] = [];
      const now = Date.now();
      const grant: GrantInput[] = (body.grant ?? []).map((g, i) => {
        const rowProblem = g.row_rule ? rowRuleError(g.row_rule) : undefined;
        if (rowProblem) errors.push({ in: 'body', pointer: `#/grant/${i}/row_rule`, detail: rowProblem });
        const fieldProblem = g.field_rules ? fieldRulesError(g.field_rules) : undefined;
        if (fieldProblem) errors.push({ in: 'body', pointer: `#/grant/${i}/field_rules`, detail: fieldProblem });
        const expiresAt = g.expires_at ? new Date(g.expires_at) : null;
        if (expiresAt && expiresAt.getTime() <= now) errors.push({ in: 'body', pointer: `#/grant/${i}/expires_at`, detail: 'must be in the future' });
        return { principal: g.principal, actions: g.actions, rowRule: g.row_rule ?? null, fieldRules: (g.field_rules ?? {}) as FieldRules, expiresAt };
      });
      if (errors.length) {
        throw new ProblemError(400, { type: 'validation', title: 'Request validation failed', detail: `The grants are not valid: ${errors[0]!.detail}.`, errors });
      }
      const revoke: RevokeInput[] = (body.revoke ?? []).map((r) =>
        'grant_id' in r && r.grant_id ? { grantId: r.grant_id, actions: r.actions } : { principal: (r as { principal: GrantInput['principal'] }).principal, actions: r.actions },
      );
      const result = await access.grants.apply(principal.tenant, 'dataset', params.datasetId, { revoke, grant }, principal.subject);
      await access.authorizer.changed();
      return { status: 200, body: datasetAccessJson(params.datasetId, result) };
    },
  };
}

function datasetAccessJson(datasetId: string, { grants, updatedAt }: ResourceGrants) {
  return {
    dataset_id: datasetId,
    grants: grants.map(grantJson),
    updated_at: (updatedAt ?? new Date(0)).toISOString(),
  };
}

function grantJson(g: Grant) {
  return {
    id: g.id,
    principal: g.principal,
    actions: g.actions as ('read' | 'query' | 'export' | 'write' | 'update' | 'delete' | 'admin')[],
    row_rule: g.rowRule,
    field_rules: g.fieldRules,
    expires_at: g.expiresAt?.toISOString() ?? null,
    created_at: g.createdAt.toISOString(),
    created_by: g.createdBy,
  };
}
