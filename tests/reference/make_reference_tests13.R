#!/usr/bin/env Rscript
# Reference values for tests that used to compute their expected value with the code under test
# (issue 13, Tests): the PFT-REML-HKSJ and PFT-DL rows of the comparison table (tests/test_comparison.py),
# the scenario refits and the leave-one-out back-transform of the robustness tables
# (tests/test_robustness.py).
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_tests13.R
#
# Input  : the small data sets written out below (the same numbers as the tests' own rows; each data
#          set is also emitted as quantities `xi` / `ni` per study, and the tests check that their rows
#          match, so the two cannot drift apart).
# Output : tests/reference/metafor_tests13_values.csv, the long format of metafor_values.csv
#          (dataset,outcome,subgroup,fit,quantity,study,value; value sprintf("%.17g"), NA empty).
#          `subgroup` holds the subgroup (comparison) or the scenario id (scenarios).

suppressPackageStartupMessages(library(metafor))
ref_dir <- file.path("tests", "reference")
if (!dir.exists(ref_dir)) stop("Run from the repository root.")
# as make_reference.R: iterate REML to convergence far below the tests' tolerance
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
out <- list()
emit <- function(dataset, subgroup, fit, quantity, value, study = "") {
  value <- as.numeric(value)
  out[[length(out) + 1]] <<- data.frame(dataset = dataset, outcome = "orr", subgroup = subgroup, fit = fit,
                                        quantity = quantity, study = study,
                                        value = ifelse(is.na(value), "", sprintf("%.17g", value)))
}
emit_data <- function(dataset, subgroup, d) {
  emit(dataset, subgroup, "DATA", "xi", d$events, d$study)
  emit(dataset, subgroup, "DATA", "ni", d$total, d$study)
}
# an rma.uni fit on the Freeman-Tukey scale, back-transformed with the harmonic mean of the pooled
# studies' n (metafor's transf.ipft.hm; the package's convention for PFT-*)
emit_pft <- function(dataset, subgroup, fit, res, ni) {
  bt <- function(x) transf.ipft.hm(x, targs = list(ni = ni))
  emit(dataset, subgroup, fit, "k", res$k)
  emit(dataset, subgroup, fit, "b", res$beta); emit(dataset, subgroup, fit, "tau2", res$tau2)
  emit(dataset, subgroup, fit, "i2", res$I2)
  emit(dataset, subgroup, fit, "est_bt", bt(c(res$beta)))
  emit(dataset, subgroup, fit, "ci_lb_bt", bt(res$ci.lb)); emit(dataset, subgroup, fit, "ci_ub_bt", bt(res$ci.ub))
}

# ---- test_comparison.py: rows() of outcome orr, four studies in two subgroups, one with 0 events ----
cmp <- data.frame(study = c("a", "b", "c", "d"), events = c(3, 10, 0, 7), total = c(30, 50, 20, 40),
                  subgroup = c("sts", "sts", "bone", "sts"))
emit_data("comparison", "overall", cmp)
# rma(measure = "PFT", xi = events, ni = total, data = cmp, method = "REML", test = "knha", control = CTRL)
res <- rma(measure = "PFT", xi = events, ni = total, data = cmp, method = "REML", test = "knha", control = CTRL)
emit_pft("comparison", "overall", "PFT-REML-HKSJ", res, cmp$total)
# rma(measure = "PFT", xi = events, ni = total, data = cmp, method = "DL")
res <- rma(measure = "PFT", xi = events, ni = total, data = cmp, method = "DL")
emit_pft("comparison", "overall", "PFT-DL", res, cmp$total)

# ---- test_robustness.py: five heterogeneous cohorts (tau2 > 0, so the refits exercise DL); each scenario keeps some of them and refits PFT-DL ----
sc <- data.frame(study = c("a", "b", "c", "d", "e"), events = c(5, 20, 3, 18, 7), total = c(40, 50, 30, 60, 45),
                 design = c("prospective", "prospective", "retrospective", "prospective", "retrospective"),
                 derivation = c("reported", "from_percent", "arithmetic", "reported", "reported"),
                 location = c("Abstract", "ASCO Annual Meeting abstract", "Abstract", "Abstract", "Abstract"))
emit_data("scenarios", "all", sc)
# the main analysis on all five cohorts:
# rma(measure = "PFT", xi = events, ni = total, data = sc, method = "DL")
res <- rma(measure = "PFT", xi = events, ni = total, data = sc, method = "DL")
emit_pft("scenarios", "all", "PFT-DL", res, sc$total)
# with the tight optimiser settings of make_reference_engine.R, so that the reference is the maximum of
# the likelihood rather than lme4's default stopping point (here 7e-6 off in tau2); default nAGQ = 7:
# rma.glmm(measure = "PLO", xi = events, ni = total, data = sc, method = "ML",
#          control = list(glmCtrl = list(epsilon = 1e-12, maxit = 100),
#                         glmerCtrl = list(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))))
g <- rma.glmm(measure = "PLO", xi = events, ni = total, data = sc, method = "ML",
              control = list(glmCtrl = list(epsilon = 1e-12, maxit = 100),
                             glmerCtrl = list(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))))
emit("scenarios", "all", "GLMM-ML", "est_bt", transf.ilogit(c(g$beta)))
emit("scenarios", "all", "GLMM-ML", "ci_lb_bt", transf.ilogit(g$ci.lb))
emit("scenarios", "all", "GLMM-ML", "ci_ub_bt", transf.ilogit(g$ci.ub))
emit("scenarios", "all", "GLMM-ML", "tau2", g$tau2)
# the rows each scenario keeps (the selection rules of the test's SCENARIOS):
kept <- list(
  prospective_only = sc$design == "prospective",                              # keep design = prospective
  excluding_rebuilt = sc$derivation %in% c("reported", "arithmetic"),         # keep reported / arithmetic
  no_conference = !grepl("meeting abstract", sc$location, ignore.case = TRUE))  # drop meeting abstracts
for (id in names(kept)) {
  d <- sc[kept[[id]], ]
  emit_data("scenarios", id, d)
  # rma(measure = "PFT", xi = events, ni = total, data = d, method = "DL")
  res <- rma(measure = "PFT", xi = events, ni = total, data = d, method = "DL")
  emit_pft("scenarios", id, "PFT-DL", res, d$total)
}

# ---- test_robustness.py, leave-one-out: omitting the big cohort d moves the harmonic-mean n ----
loo <- data.frame(study = c("a", "b", "c", "d"), events = c(2, 5, 9, 40), total = c(10, 30, 41, 400))
emit_data("loo", "all", loo)
d <- loo[loo$study != "d", ]
emit_data("loo", "without_d", d)
# rma(measure = "PFT", xi = events, ni = total, data = d, method = "DL")   (the fit of the other three)
res <- rma(measure = "PFT", xi = events, ni = total, data = d, method = "DL")
emit_pft("loo", "without_d", "PFT-DL", res, d$total)
# the same pooled value back-transformed with every cohort's n, the mistake the test guards against:
# transf.ipft.hm(b, targs = list(ni = loo$total))
emit("loo", "without_d", "PFT-DL", "est_bt_all_n", transf.ipft.hm(c(res$beta), targs = list(ni = loo$total)))

write.csv(do.call(rbind, out), file.path(ref_dir, "metafor_tests13_values.csv"), row.names = FALSE, quote = FALSE)
cat("wrote", nrow(do.call(rbind, out)), "rows\n")
