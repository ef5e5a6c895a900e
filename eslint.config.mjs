// Lint for hostnet (npm run lint; .ci/run runs it before the tests). Formatting is prettier's job
// (prettier.config.json); eslint-config-prettier turns off the rules that would fight it.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import prettier from "eslint-config-prettier";

/** Import patterns refused in a providers/ file whose path to providers/ is `up` ("../"). */
function providerImports(up) {
  const esc = up.replace(/\./g, "\\.");
  return [
    {
      regex: `^${esc}(?!kinds/)[^./][^/]*/(?!index$).`,
      message:
        "import the other folder's index.ts (../host), not a file inside it (providers/README.md)",
    },
    {
      regex: `^${esc}kinds/[^/]+/(?!index$).`,
      message:
        "import the kind's folder (../kinds/fdbEntry), not a file inside it",
    },
    {
      regex: `^${esc}\\.\\./(components|stacks)(/|$)`,
      message:
        "providers/ must not import components/ or stacks/ (dependencies point one way)",
    },
  ];
}

export default tseslint.config(
  {
    ignores: ["dist/**", "node_modules/**", ".hostnet/**", "bench/results/**"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    // The serialized provider and the dynamic-provider runtime load code lazily on purpose.
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["**/*.ts"],
    rules: {
      // Engine payloads (dynamic-provider inputs, Automation API events) are untyped JSON at the
      // boundary; zod parses them right after. `any` stays allowed there, and only there by review.
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrors: "none",
        },
      ],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  // providers/ is in folders (providers/README.md): across folders, import a folder's index.ts,
  // never a file inside it; and nothing in providers/ imports components/ or stacks/. The top
  // files of kinds/ (kind.ts, plan.ts, dynamic.ts, portFlags.ts) are the kind contract: no index.
  {
    files: ["providers/*/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: providerImports("../") }],
    },
  },
  {
    files: ["providers/kinds/*/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...providerImports("../../"),
            {
              regex: "^\\.\\./[^./][^/]*/(?!index$).",
              message:
                "import the other kind's folder (../fdbEntry), not a file inside it",
            },
          ],
        },
      ],
    },
  },
  {
    files: [
      "components/**/*.ts",
      "stacks/**/*.ts",
      "scripts/**/*.ts",
      "bench/**/*.ts",
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(\\.\\./)+providers/(?!kinds/)[^./][^/]*/(?!index$).",
              message:
                "import the providers/ folder's index (../providers/transport), not a file inside it",
            },
            {
              regex: "^(\\.\\./)+providers/kinds/[^/]+/(?!index$).",
              message:
                "import the kind's folder (../providers/kinds/hostHealth), not a file inside it",
            },
          ],
        },
      ],
    },
  },
  {
    // chai's property assertions (`expect(x).to.be.empty`) are expressions by design.
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-unused-expressions": "off" },
  },
  {
    files: ["providers/stub/**/*.js"],
    languageOptions: {
      sourceType: "commonjs",
      globals: { require: "readonly", module: "writable", process: "readonly" },
    },
  },
);
