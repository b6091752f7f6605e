# syntax=docker/dockerfile:1

# ---- build: compile TypeScript, then strip dev and optional dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No chDB (optional dependency) in the image: compose points the gateway at a ClickHouse server.
RUN npm ci --omit=optional --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund

# ---- runtime ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/openapi ./openapi
COPY --from=build /app/generated ./generated
COPY --from=build /app/policies ./policies
# tsc doesn't copy .sql files; dist/src/stores/migrate.js falls back to this folder.
COPY --from=build /app/src/stores/migrations ./src/stores/migrations
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
