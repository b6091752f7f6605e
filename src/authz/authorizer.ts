import { newEnforcer, newModelFromString, Util, type Adapter, type Enforcer, type Model } from 'casbin';
import type { Logger } from 'pino';
import type { Principal } from '../gateway/request-types.js';
import type { SharedState } from '../stores/index.js';
import { loadPolicyFiles, PolicyFileError, type PolicyRule, type PolicySet } from './policy-files.js';
import { objectKey, roleKey, subjectKey } from './vocabulary.js';
import { SharedStateWatcher } from './watcher.js';

export interface ResourceRef {
  type: string;
  /** Absent for collection actions (list, create). */
  id?: string;
  attributes?: Principal['attributes'];
}

export interface Decision {
  allowed: boolean;
  /** The policy line that decided: the allow that matched, or the deny that won; absent when nothing matched. */
  rule?: string[];
}

export interface AuthorizerOptions {
  policyDir: string;
  /** Grants made through the API, as policy lines (absent: the policy files alone, as the CLI uses them). */
  grants?: { policyRules(): Promise<PolicyRule[]> };
  /** Where policy changes are announced to other processes. */
  shared?: SharedState;
  logger: Logger;
  /** A reload now and then, in case an announcement was lost. */
  reloadMs?: number;
  /** How long one decision is remembered for the same principal, resource and action. */
  decisionCacheMs?: number;
}

const DECISION_CACHE_MAX = 10_000;

/** Answers "may this principal do this action on this resource in its tenant", from Casbin. */
export class Authorizer {
  readonly #o: AuthorizerOptions;
  readonly #files: PolicySet;
  #enforcer!: Enforcer;
  #decisions = new Map<string, { decision: Decision; until: number }>();
  // Authenticators hand out one principal object per credential, so its part of the cache key is made once.
  readonly #principalKeys = new WeakMap<Principal, string>();
  #watcher?: SharedStateWatcher;
  #timer?: NodeJS.Timeout;
  #reloading?: Promise<void>;
  #reloadAgain = false;

  private constructor(options: AuthorizerOptions, files: PolicySet) {
    this.#o = options;
    this.#files = files;
  }

  /** Loads and checks the policy files (any problem throws PolicyFileError with file and line) and the grants. */
  static async open(options: AuthorizerOptions): Promise<Authorizer> {
    const authorizer = new Authorizer(options, loadPolicyFiles(options.policyDir));
    authorizer.#enforcer = await authorizer.#build();
    if (options.shared) {
      authorizer.#watcher = new SharedStateWatcher(options.shared, options.logger);
      authorizer.#watcher.setUpdateCallback(() => void authorizer.reload());
      await authorizer.#watcher.start();
    }
    if (options.reloadMs) {
      authorizer.#timer = setInterval(() => void authorizer.reload(), options.reloadMs);
      authorizer.#timer.unref();
    }
    return authorizer;
  }

  decide(principal: Principal, resource: ResourceRef, action: string, now = Date.now()): Decision {
    const objKey = objectKey(resource.type, resource.id);
    const cacheMs = this.#o.decisionCacheMs ?? 0;
    const attrs = resource.attributes ?? {};
    const cacheKey = cacheMs ? `${this.#principalKey(principal)}\u0000${objKey}\u0000${action}\u0000${resource.attributes ? JSON.stringify(attrs) : ''}` : '';
    const hit = cacheMs ? this.#decisions.get(cacheKey) : undefined;
    if (hit && hit.until > now) return hit.decision;
    const sub = {
      id: subjectKey(principal.subject),
      subject: principal.subject,
      roles: principal.roles,
      roleKeys: principal.roles.map(roleKey),
      scopes: principal.scopes,
      mfa: principal.mfa,
      authMethod: principal.authMethod,
      attrs: principal.attributes,
    };
    const obj = { key: objKey, type: resource.type, id: resource.id ?? '', attrs };
    const [allowed, rule] = this.#enforcer.enforceExSync(sub, principal.tenant, obj, action, { now });
    const decision: Decision = { allowed, rule: rule.length ? rule : undefined };
    if (cacheMs) {
      if (this.#decisions.size >= DECISION_CACHE_MAX) this.#decisions.delete(this.#decisions.keys().next().value!);
      this.#decisions.set(cacheKey, { decision, until: now + cacheMs });
    }
    return decision;
  }

  #principalKey(p: Principal): string {
    let key = this.#principalKeys.get(p);
    if (key === undefined) {
      key = JSON.stringify([p.tenant, p.subject, p.roles, p.scopes, p.mfa, p.authMethod, p.attributes]);
      this.#principalKeys.set(p, key);
    }
    return key;
  }

  /** Whether the principal has the role, directly or through role inheritance in its tenant. */
  holdsRole(principal: Pick<Principal, 'roles' | 'tenant'>, role: string): boolean {
    const rm = this.#enforcer.getRoleManager();
    return principal.roles.some((r) => r === role || rm.syncedHasLink!(roleKey(r), roleKey(role), principal.tenant));
  }

  /** Policy lines of one type (`p2` row rules, `p3` field rules), for the features that enforce them. */
  rulesOfType(ptype: 'p' | 'p2' | 'p3' | 'g'): string[][] {
    return this.#enforcer.getModel().getPolicy(ptype[0]!, ptype);
  }

  /** Re-reads the grants and swaps in a new enforcer; calls during a reload coalesce into one more. */
  async reload(): Promise<void> {
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      do {
        this.#reloadAgain = false;
        try {
          this.#enforcer = await this.#build();
          this.#decisions = new Map();
        } catch (err) {
          this.#o.logger.error({ err }, 'authz: policy reload failed; keeping the previous policy');
        }
      } while (this.#reloadAgain);
    })().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  /** After a grant change: reload here, then tell the other processes. */
  async changed(): Promise<void> {
    await this.reload();
    await this.#watcher?.update();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#watcher?.close();
  }

  // A fresh enforcer swapped in whole: Casbin's loadPolicy clears the live model first, which would
  // deny (or half-decide) requests arriving during the reload.
  async #build(): Promise<Enforcer> {
    let model: Model;
    try {
      model = newModelFromString(this.#files.model);
    } catch (err) {
      throw new PolicyFileError([`${this.#o.policyDir}/model.conf: ${(err as Error).message}`]);
    }
    const rules = [...this.#files.rules, ...((await this.#o.grants?.policyRules()) ?? [])];
    const enforcer = await newEnforcer(model, new RulesAdapter(rules));
    await enforcer.addNamedDomainMatchingFunc('g', Util.keyMatchFunc);
    const rm = enforcer.getRoleManager();
    // p.sub matches the principal's own subject, one of its roles, or a role one of them inherits.
    await enforcer.addFunction('actorMatch', ((sub: { id: string; roleKeys: string[] }, psub: string, dom: string) =>
      psub === sub.id || sub.roleKeys.some((r) => r === psub || rm.syncedHasLink!(r, psub, dom))) as never);
    return enforcer;
  }
}

/** Feeds Casbin the checked policy lines; policy changes go through files and the grant store, not Casbin. */
class RulesAdapter implements Adapter {
  constructor(private readonly rules: PolicyRule[]) {}

  async loadPolicy(model: Model): Promise<void> {
    for (const [ptype, ...fields] of this.rules) model.addPolicy(ptype[0]!, ptype, fields);
  }

  async savePolicy(): Promise<boolean> {
    throw new Error('policies are read-only here: edit the files in policies/ or use the access API');
  }

  async addPolicy(): Promise<void> {
    throw new Error('policies are read-only here');
  }

  async removePolicy(): Promise<void> {
    throw new Error('policies are read-only here');
  }

  async removeFilteredPolicy(): Promise<void> {
    throw new Error('policies are read-only here');
  }
}
