package io.chatstream.flink;

import java.util.Set;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.formats.avro.registry.confluent.RegistryAvroFormatFactory;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.format.ProjectableDecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.types.DataType;

/**
 * Flink's {@code avro-confluent} format, except that a record which is not Confluent Avro of a
 * registered schema is skipped, counted and logged instead of failing the job (Flink's format has
 * no ignore-parse-errors; one rogue record on a topic would otherwise restart the job forever).
 * A schema registry that does not answer still fails the job: valid records are never skipped.
 * Same options as {@code avro-confluent}, under the prefix {@code lenient-avro-confluent.}.
 */
public final class LenientAvroConfluentFormatFactory implements DeserializationFormatFactory {

    public static final String IDENTIFIER = "lenient-avro-confluent";

    private final RegistryAvroFormatFactory registry = new RegistryAvroFormatFactory();

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        DecodingFormat<DeserializationSchema<RowData>> strict = registry.createDecodingFormat(context, formatOptions);
        return new ProjectableDecodingFormat<DeserializationSchema<RowData>>() {
            @Override
            @SuppressWarnings("unchecked")
            public DeserializationSchema<RowData> createRuntimeDecoder(
                    DynamicTableSource.Context sourceContext, DataType physicalType, int[][] projections) {
                DeserializationSchema<RowData> decoder = strict instanceof ProjectableDecodingFormat
                        ? ((ProjectableDecodingFormat<DeserializationSchema<RowData>>) strict)
                                .createRuntimeDecoder(sourceContext, physicalType, projections)
                        : strict.createRuntimeDecoder(sourceContext, physicalType);
                return new LenientDeserializationSchema(decoder);
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return strict.getChangelogMode();
            }
        };
    }

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return registry.requiredOptions();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return registry.optionalOptions();
    }

    @Override
    public Set<ConfigOption<?>> forwardOptions() {
        return registry.forwardOptions();
    }
}
