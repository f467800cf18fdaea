#!/usr/bin/env Rscript
# Reference values for the workflow wiring of issue 11: the sarcoma meta-regression the default
# config runs (moderators median_age and design, reference level prospective), the points of its
# bubble-plot line, and the Freeman-Tukey value of a funnel benchmark p0.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_wiring.R
#
# Input  : tests/reference/inputs/sarcoma_moderators.csv: the ORR and DCR cohorts of
#          data/raw/ (as cleaning pools them) with median_age and design of
#          data/raw/study_characteristics.csv, written by singlearm.moderation.moderator_values.
# Output : tests/reference/metafor_wiring_values.csv, the long format of metafor_values.csv
#          (dataset,outcome,subgroup,fit,quantity,study,value; value sprintf("%.17g"), NA empty);
#          for coefficients `study` holds metafor's coefficient name.

suppressPackageStartupMessages(library(metafor))
ref_dir <- file.path("tests", "reference")
if (!dir.exists(ref_dir)) stop("Run from the repository root.")
d_all <- read.csv(file.path(ref_dir, "inputs", "sarcoma_moderators.csv"))
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
out <- list()
emit <- function(outcome, fit, quantity, value, study = "") {
  value <- as.numeric(value)
  out[[length(out) + 1]] <<- data.frame(dataset = "sarcoma", outcome = outcome, subgroup = "overall", fit = fit,
                                        quantity = quantity, study = study,
                                        value = ifelse(is.na(value), "", sprintf("%.17g", value)))
}

for (oc in c("orr", "dcr")) {
  d <- d_all[d_all$outcome == oc, ]
  d$design <- relevel(factor(d$design), ref = "prospective")
  for (method in c("DL", "REML")) {
    fit <- paste0("METAREG-PFT-", method)
    # rma(measure = "PFT", xi = events, ni = total, mods = ~ median_age + design, data = d,
    #     method = method, control = CTRL)
    res <- rma(measure = "PFT", xi = events, ni = total, mods = ~ median_age + design, data = d, method = method,
               control = CTRL)
    nm <- rownames(res$beta)
    emit(oc, fit, "b", res$beta, nm); emit(oc, fit, "se", res$se, nm); emit(oc, fit, "pval", res$pval, nm)
    emit(oc, fit, "ci_lb", res$ci.lb, nm); emit(oc, fit, "ci_ub", res$ci.ub, nm)
    emit(oc, fit, "qm", res$QM); emit(oc, fit, "qm_p", res$QMp); emit(oc, fit, "qe", res$QE)
    emit(oc, fit, "qe_p", res$QEp); emit(oc, fit, "tau2", res$tau2); emit(oc, fit, "r2", res$R2)
    # the intercept-only fit of the same estimator: rma(measure = "PFT", xi, ni, method = method)$tau2
    emit(oc, fit, "tau2_null", rma(measure = "PFT", xi = events, ni = total, data = d, method = method,
                                   control = CTRL)$tau2)
    # the bubble-plot line at the youngest and oldest median age, design at its reference level:
    # predict(res, newmods = cbind(age, 0))
    ages <- range(d$median_age)
    p <- predict(res, newmods = cbind(ages, 0))
    emit(oc, fit, "line_pred", p$pred, c("min", "max"))
    emit(oc, fit, "line_ci_lb", p$ci.lb, c("min", "max")); emit(oc, fit, "line_ci_ub", p$ci.ub, c("min", "max"))
  }
  # funnel benchmark p0 = 0.2 on the Freeman-Tukey scale: the double arcsine whose harmonic-mean
  # back-transform is p0,
  #   uniroot(function(b) transf.ipft.hm(b, targs = list(ni = total)) - 0.2, c(0, pi / 2), tol = 1e-14)
  b0 <- uniroot(function(b) transf.ipft.hm(b, targs = list(ni = d$total)) - 0.2, c(0, pi / 2), tol = 1e-14)$root
  emit(oc, "FUNNEL-P0-PFT", "refline_p0_0.2", b0)
}
write.csv(do.call(rbind, out), file.path(ref_dir, "metafor_wiring_values.csv"), row.names = FALSE, quote = FALSE)
cat("wrote", nrow(do.call(rbind, out)), "rows\n")
